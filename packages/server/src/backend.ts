import type { Logger } from 'pino';
import type { JobDefinition, JobEngine } from './jobs/types.ts';
import type { NonceStore } from './stores/types.ts';

export interface BackendContext {
  definitions: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  concurrency: number | undefined;
  retentionMs: number | undefined;
  now: () => number;
}

export interface RunningBackend {
  description: string;
  nonces: NonceStore;
  jobs: JobEngine;
  /** Releases connections; the job engine is closed first, by the server. */
  close(): Promise<void>;
}

/** State kept outside the process (e.g. Redis): opened once the server knows its job handlers. */
export interface Backend {
  open(ctx: BackendContext): Promise<RunningBackend>;
}

import type { JobStatus } from '@signet/protocol';
import type { Logger } from 'pino';
import type { JobDefinition, JobEngine } from './jobs/types.ts';
import type { NonceStore } from './stores/types.ts';

export interface BackendContext {
  definitions: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  concurrency: number | undefined;
  retentionMs: number | undefined;
  now: () => number;
  /**
   * Told each time a job of this process enters a status (the metrics' job transitions), where
   * the backend supports it: the embedded stores do; Redis does not yet.
   */
  onJobChange?: (tool: string, status: JobStatus) => void;
}

export interface RunningBackend {
  description: string;
  nonces: NonceStore;
  jobs: JobEngine;
  /** Releases connections; the job engine is closed first, by the server. */
  close(): Promise<void>;
}

/**
 * Where a server keeps nonces and jobs: in this process (`MemoryStore`, `SqliteStore`) or shared
 * by many (`redisBackend`). Opened once the server knows its job handlers; until then it holds
 * nothing (no file, no connection), so a backend that is never opened needs no closing.
 */
export interface Backend {
  open(ctx: BackendContext): Promise<RunningBackend>;
}

import type { Logger } from 'pino';
import type { AuditRecorder } from './audit/recorder.ts';
import type { JobDefinition, JobEngine } from './jobs/types.ts';
import type { SignetMetrics } from './metrics.ts';
import type { JobRecord, NonceStore } from './stores/types.ts';

/** Told each time a job enters a status (created: queued), with the job as it then is. */
export type JobChangeListener = (record: JobRecord) => void;

/** What hears of job changes: the metrics and the audit log, whichever are on. */
export function jobChangeListener(
  metrics: SignetMetrics | undefined,
  audit: AuditRecorder | undefined,
): JobChangeListener | undefined {
  if (!metrics && !audit) return undefined;
  return (record) => {
    metrics?.jobChanged(record.tool, record.status);
    audit?.job(record);
  };
}

export interface BackendContext {
  definitions: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  concurrency: number | undefined;
  retentionMs: number | undefined;
  /** The largest job output kept (UTF-8 JSON); a larger one fails its job (TOOL_FAILED). */
  maxOutputBytes?: number | undefined;
  now: () => number;
  /**
   * Told each time this process moves a job into a status (the metrics' job transitions, the
   * audit log's job entries). With Redis, each process tells of the changes it wrote.
   */
  onJobChange?: JobChangeListener;
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

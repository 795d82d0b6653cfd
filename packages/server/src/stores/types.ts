import type { JobErrorCode, JobProgress, JobStatus } from '@signet/protocol';

export type MaybePromise<T> = T | Promise<T>;

/** Remembers nonces so that a signed request is accepted once (DESIGN 1.4 check 6). */
export interface NonceStore {
  /** Records `nonce` for `clientId` until `expiresAtMs`; false when it was already recorded. */
  claim(clientId: string, nonce: string, expiresAtMs: number): MaybePromise<boolean>;
  /**
   * How many nonces the store holds (spent ones, until pruned), if it can tell cheaply: read
   * for the `signet_nonces` metric at each scrape, never on a call.
   */
  size?(): MaybePromise<number>;
}

export interface JobRecord {
  id: string;
  clientId: string;
  requestId: string;
  tool: string;
  args: Record<string, unknown>;
  /** Identifies `args`, so a retried start with other args is told apart (REQUEST_ID_REUSED). */
  argsHash: string;
  status: JobStatus;
  progress: JobProgress | null;
  output: Record<string, unknown> | null;
  error: { code: JobErrorCode; message: string } | null;
  /** Bumped on every change; the watch cursor. */
  seq: number;
  /** How many times a handler has started on it. */
  attempts: number;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export type JobPatch = Partial<
  Pick<JobRecord, 'status' | 'progress' | 'output' | 'error' | 'attempts' | 'finishedAt'>
>;

/** One change of a job, as watch_job reports it. */
export interface JobEvent {
  seq: number;
  record: JobRecord;
}

/** Durable job state for the in-process job engine. Synchronous: memory and SQLite are local. */
export interface JobStore {
  /** Inserts `record` unless `(clientId, requestId)` already has a job; returns the job either way. */
  createOrGet(record: JobRecord): { record: JobRecord; created: boolean };
  get(id: string): JobRecord | undefined;
  /** The job `(clientId, requestId)` started, if any. */
  findByRequest(clientId: string, requestId: string): JobRecord | undefined;
  /** Applies `patch`, bumps `seq`, records the change for watchers; undefined if gone. */
  update(id: string, patch: JobPatch, now: number): JobRecord | undefined;
  /**
   * Changes with `seq > afterSeq`, oldest first (what a resuming watcher missed). Each record is
   * rebuilt from the job and the change's delta: the output only on the `done` change, and the
   * records of one call share one copy of the args.
   */
  eventsAfter(id: string, afterSeq: number): JobEvent[];
  listByStatus(statuses: readonly JobStatus[]): JobRecord[];
  /** Deletes finished jobs (and their events) whose `finishedAt` is before `cutoff`. */
  deleteFinishedBefore(cutoff: number): number;
}

/** Everything the embedded engine keeps: nonces and jobs behind one handle. */
export interface LocalStore extends NonceStore, JobStore {
  /** A batching (group-commit) claim, where the store has one; the server prefers it. */
  claimSoon?(clientId: string, nonce: string, expiresAtMs: number): Promise<boolean>;
  /** Drops nonces that expired before `now`; keeps the store bounded. */
  pruneNonces(now: number): number;
  /** How many nonces the store holds, expired ones until the next prune (see NonceStore.size). */
  nonceCount?(): number;
  close(): void;
  readonly description: string;
}

import type { JobContract } from '@signet/contracts';
import type { JobProgress, JobState } from '@signet/protocol';

export interface JobContext {
  jobId: string;
  clientId: string;
  /** Aborted when the job is cancelled or the server shuts down past its grace period. */
  signal: AbortSignal;
  /** Reports progress; poll_job and watch_job show it. */
  progress(progress: JobProgress): void;
  /** 1 on the first run, 2 when a retryable job runs again after its process died. */
  attempt: number;
}

export type JobHandler<TArgs = Record<string, unknown>, TOutput = Record<string, unknown>> = (
  args: TArgs,
  ctx: JobContext,
) => Promise<TOutput>;

export interface JobDefinition {
  contract: JobContract;
  handler: JobHandler;
}

export interface StartJobRequest {
  clientId: string;
  requestId: string;
  tool: string;
  args: Record<string, unknown>;
  argsHash: string;
  /** What `JobEngine.admitStart` gave this start: a new job takes its reservation over. */
  admission?: JobAdmission;
}

/**
 * A start admitted under its client's cap on unfinished jobs: a reservation of one job, until the
 * job is written (then the job counts instead) or `release` gives it back.
 */
export interface JobAdmission {
  /** Gives the reservation back, unless a new job took it over; idempotent. */
  release(): void;
}

/**
 * A job's state with its position in the job's change log (`JobRecord.seq`: 0 when created, one
 * more with every change), which job responses carry, signed, as `job.seq` (DESIGN 1.2).
 */
export type SequencedJobState = JobState & { seq: number };

export interface JobUpdate {
  /** The watch cursor: resume after it with `after`. It is `String(state.seq)`. */
  id: string;
  state: SequencedJobState;
}

/** Runs jobs and answers for them. Every method is scoped to the client that owns the job. */
export interface JobEngine {
  /**
   * Admits a start by `clientId` under a cap of `max` unfinished (queued or running) jobs, before
   * the call's nonce is claimed (DESIGN 1.4): reserves one job, to be passed to `start` and
   * released once the call is over. At the cap it refuses with 429 RATE_LIMITED
   * (`unfinishedJobsRefusal`), unless `requestId` already started a job, whose retry is answered
   * with that job. The embedded engine counts exactly; the Redis engine too, save for a start
   * that takes longer than its reservation lasts.
   */
  admitStart(clientId: string, requestId: string, max: number): Promise<JobAdmission>;
  /**
   * Starts a job, or returns the one this `(clientId, requestId)` already started; `seq` is the
   * job's position in its change log (0 for a new job, the current one for a retry).
   */
  start(request: StartJobRequest): Promise<{ jobId: string; seq: number }>;
  /** `undefined` when there is no such job for this client (or it is past retention). */
  get(clientId: string, jobId: string): Promise<SequencedJobState | undefined>;
  cancel(clientId: string, jobId: string): Promise<SequencedJobState | undefined>;
  /**
   * The job's changes after cursor `after` (or its current state first, when `after` is absent
   * or unknown), ending with its terminal state. `undefined` when there is no such job.
   */
  watch(
    clientId: string,
    jobId: string,
    after: string | undefined,
    signal: AbortSignal,
  ): Promise<AsyncIterable<JobUpdate> | undefined>;
  /** Stops taking jobs, lets running ones finish within `graceMs`, interrupts the rest. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

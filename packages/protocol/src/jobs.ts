import type { EnvelopeError, Reply } from './envelope.ts';
import type { JobErrorCode } from './reasons.ts';

export const JOB_STATUSES = ['queued', 'running', 'done', 'error', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set([
  'done',
  'error',
  'cancelled',
]);

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_JOB_STATUSES.has(status);
}

/** Reported by a job's handler itself while it runs. */
export interface JobProgress {
  current: number;
  total?: number;
  message?: string;
}

/** A job as its owner sees it. `O` is the job's output type. */
export type JobState<O = Record<string, unknown>> =
  | { job_id: string; status: 'queued' | 'running'; progress?: JobProgress }
  | { job_id: string; status: 'done'; output: O }
  | { job_id: string; status: 'error'; error: { code: JobErrorCode; message: string } }
  | { job_id: string; status: 'cancelled' };

/** True for a response status that is a job's (DESIGN 1.7): the envelope encodes a `JobState`. */
export function isJobStatus(status: string): status is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(status);
}

/** DESIGN 1.7: how a job's state is written into a response envelope. */
export function jobStateToReply(state: JobState<unknown>): Reply {
  switch (state.status) {
    case 'queued':
    case 'running':
      return {
        status: state.status,
        ok: true,
        result: state.progress
          ? { job_id: state.job_id, progress: state.progress }
          : { job_id: state.job_id },
        error: null,
      };
    case 'done':
      return {
        status: 'done',
        ok: true,
        result: state.output as Record<string, unknown>,
        error: null,
      };
    case 'error':
      return { status: 'error', ok: false, result: null, error: state.error };
    case 'cancelled':
      return { status: 'cancelled', ok: true, result: null, error: null };
  }
}

/** The inverse of `jobStateToReply`, for a client that knows which job it asked about. */
export function jobStateFromReply(jobId: string, reply: Omit<Reply, 'ok'>): JobState {
  switch (reply.status) {
    case 'queued':
    case 'running': {
      const progress = (reply.result as { progress?: JobProgress } | null)?.progress;
      return progress
        ? { job_id: jobId, status: reply.status, progress }
        : { job_id: jobId, status: reply.status };
    }
    case 'done':
      return { job_id: jobId, status: 'done', output: reply.result ?? {} };
    case 'error': {
      const error = reply.error as EnvelopeError | null;
      return {
        job_id: jobId,
        status: 'error',
        error: {
          code: error?.code === 'INTERRUPTED' ? 'INTERRUPTED' : 'TOOL_FAILED',
          message: error?.message ?? 'job failed',
        },
      };
    }
    case 'cancelled':
      return { job_id: jobId, status: 'cancelled' };
    default:
      throw new Error(`status "${reply.status}" is not a job status`);
  }
}

import type { Reply } from './envelope.ts';
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

const JOB_ERROR_CODES: ReadonlySet<string> = new Set<JobErrorCode>(['TOOL_FAILED', 'INTERRUPTED']);

function isProgress(value: unknown): value is JobProgress {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { current, total, message } = value as Record<string, unknown>;
  return (
    typeof current === 'number' &&
    (total === undefined || typeof total === 'number') &&
    (message === undefined || typeof message === 'string')
  );
}

/**
 * Why `reply` is not a job's state as DESIGN 1.7 writes it (`undefined` if it is one). A reply
 * with `status:"error"` is a failed job only with TOOL_FAILED or INTERRUPTED: any other code is a
 * refused call (issue 21, V1), which no job state may be read from.
 */
export function jobReplyProblem(reply: Reply): string | undefined {
  const { status, ok, result, error } = reply;
  if (!isJobStatus(status)) return `status "${status}" is not a job status`;
  if (ok !== (status !== 'error')) return `ok is ${ok} for a ${status} job`;
  if (status === 'error') {
    if (error === null) return 'a failed job without its error';
    if (!JOB_ERROR_CODES.has(error.code)) {
      return `a signed ${error.code} refusal is not a failed job`;
    }
    return result === null ? undefined : 'a failed job with a result';
  }
  if (error !== null) return `a ${status} job with an error`;
  switch (status) {
    case 'queued':
    case 'running': {
      if (result === null) return `a ${status} job without its result`;
      return result.progress === undefined || isProgress(result.progress)
        ? undefined
        : `a ${status} job with a malformed progress`;
    }
    case 'done':
      return result === null ? 'a done job without its output' : undefined;
    case 'cancelled':
      return result === null ? undefined : 'a cancelled job with a result';
  }
}

/**
 * The inverse of `jobStateToReply`, for a client that knows which job it asked about. Throws on
 * a reply that is not a job state (`jobReplyProblem`): nothing is coerced.
 */
export function jobStateFromReply(jobId: string, reply: Reply): JobState {
  const problem = jobReplyProblem(reply);
  if (problem !== undefined) throw new Error(problem);
  switch (reply.status as JobStatus) {
    case 'queued':
    case 'running': {
      const status = reply.status as 'queued' | 'running';
      const progress = (reply.result as { progress?: JobProgress }).progress;
      return progress ? { job_id: jobId, status, progress } : { job_id: jobId, status };
    }
    case 'done':
      return { job_id: jobId, status: 'done', output: reply.result! };
    case 'error': {
      const { code, message } = reply.error!;
      return { job_id: jobId, status: 'error', error: { code: code as JobErrorCode, message } };
    }
    case 'cancelled':
      return { job_id: jobId, status: 'cancelled' };
  }
}

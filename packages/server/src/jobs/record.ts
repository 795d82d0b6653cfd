import type { JobProgress, JobState } from '@signet/protocol';
import type { JobRecord } from '../stores/types.ts';
import type { SequencedJobState, StartJobRequest } from './types.ts';

/** A job as it is first stored: queued, nothing run yet. */
export function newJobRecord(id: string, request: StartJobRequest, now: number): JobRecord {
  return {
    id,
    clientId: request.clientId,
    requestId: request.requestId,
    tool: request.tool,
    args: request.args,
    argsHash: request.argsHash,
    status: 'queued',
    progress: null,
    output: null,
    error: null,
    seq: 0,
    attempts: 0,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
  };
}

/** The job as its owner sees it, with its place in its change log (the record's `seq`). */
export function recordToState(record: JobRecord): SequencedJobState {
  return { ...stateOf(record), seq: record.seq };
}

function stateOf(record: JobRecord): JobState {
  switch (record.status) {
    case 'queued':
    case 'running':
      return record.progress
        ? { job_id: record.id, status: record.status, progress: record.progress }
        : { job_id: record.id, status: record.status };
    case 'done':
      return { job_id: record.id, status: 'done', output: record.output ?? {} };
    case 'error':
      return {
        job_id: record.id,
        status: 'error',
        error: record.error ?? { code: 'TOOL_FAILED', message: 'job failed' },
      };
    case 'cancelled':
      return { job_id: record.id, status: 'cancelled' };
  }
}

const MAX_PROGRESS_MESSAGE = 1000;

export function checkProgress(progress: JobProgress): JobProgress {
  const { current, total, message } = progress;
  if (!Number.isFinite(current) || (total !== undefined && !Number.isFinite(total))) {
    throw new TypeError('progress.current and progress.total must be finite numbers');
  }
  return {
    current,
    ...(total !== undefined ? { total } : {}),
    ...(message !== undefined ? { message: String(message).slice(0, MAX_PROGRESS_MESSAGE) } : {}),
  };
}

// A job's change log holds deltas, not whole records: a job's args (up to a request body) and
// output (up to the output limit) are stored once, so a job that reports progress many times
// costs its args once, not once per report (issue 21, V3).
import type { JobEvent, JobRecord } from './types.ts';

/** What a change of a job may touch: everything but its identity, args and output. */
export type JobDelta = Pick<
  JobRecord,
  'seq' | 'status' | 'progress' | 'error' | 'attempts' | 'updatedAt' | 'finishedAt'
>;

/** The part of `record` that a change log entry keeps. */
export function deltaOf(record: JobRecord): JobDelta {
  return {
    seq: record.seq,
    status: record.status,
    progress: record.progress,
    error: record.error,
    attempts: record.attempts,
    updatedAt: record.updatedAt,
    finishedAt: record.finishedAt,
  };
}

/**
 * The record as it was at `delta`, from the job as it is now (`job`: its identity, args and,
 * once done, output). Only a `done` change carries the output: it is terminal, so the job's
 * output is the one it ended with, and no change before it had one.
 */
export function eventOf(job: JobRecord, delta: JobDelta): JobEvent {
  const record: JobRecord = {
    ...job,
    ...deltaOf({ ...job, ...delta }),
    output: delta.status === 'done' ? job.output : null,
  };
  return { seq: delta.seq, record };
}

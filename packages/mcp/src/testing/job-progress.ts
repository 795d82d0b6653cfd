// What the bridge tests read of a job call: the Signet job id the bridge puts at
// `_meta["signet/job_id"]` of every progress notification (and of the result).
import { META_JOB_ID } from '../outcome.ts';

/** The job id a progress notification (or a call's result) carries, if any. */
export function jobIdOf(message: object): string | undefined {
  const id = (message as { _meta?: Record<string, unknown> })._meta?.[META_JOB_ID];
  return typeof id === 'string' ? id : undefined;
}

/** An `onprogress` for a job call, and the job's id once its first progress notification came. */
export function jobStart(): { onprogress: (update: object) => void; jobId: Promise<string> } {
  let started!: (jobId: string) => void;
  const jobId = new Promise<string>((resolve) => {
    started = resolve;
  });
  return {
    onprogress: (update) => {
      const id = jobIdOf(update);
      if (id) started(id);
    },
    jobId,
  };
}

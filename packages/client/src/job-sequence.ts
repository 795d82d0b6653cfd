import type { ResponseEnvelope } from '@signet/protocol';
import { SignetResponseError } from './errors.ts';

// A job tool's response carries, signed, `job: {id, seq}` (DESIGN 1.2): which job it speaks of,
// and the job's position in its change log (0 when created, one more with every change). A
// verified response already proves which request it answers (it echoes request_id and nonce);
// `job` proves which job, and `seq` orders the answers: within a watch stream each event must
// come after the last, and a poll can never go back before what the caller has already seen.

/** The seq of each job state that came out of a verified response (kept off the state itself). */
const seqs = new WeakMap<object, number>();

/**
 * The position in its job's change log of a `JobState` this client returned (from poll_job,
 * cancel_job or a watch_job event): the signed `job.seq` of the response it came from.
 * `undefined` for a state that did not come from a verified response.
 */
export function jobSeq(state: object): number | undefined {
  return seqs.get(state);
}

/** Records `seq` as the position of `state` (see `jobSeq`); returns `state`. */
export function withJobSeq<T extends object>(state: T, seq: number): T {
  seqs.set(state, seq);
  return state;
}

/**
 * The `job` of a verified job response, which must name `jobId`: refused as a malformed envelope
 * when it is missing, as a mismatch when it names another job.
 */
export function jobOf(envelope: ResponseEnvelope, jobId: string): { id: string; seq: number } {
  const job = envelope.job;
  if (job === undefined) {
    throw new SignetResponseError(
      'BAD_RESPONSE_ENVELOPE',
      'the job response does not say which job it is about',
    );
  }
  if (job.id !== jobId) {
    throw new SignetResponseError('RESPONSE_MISMATCH', 'the response is about another job');
  }
  return job;
}

/**
 * Refuses a job's `seq` that does not come after `last` (a watch event replayed or out of
 * order), or, with `orEqual`, one that comes before it (a poll answered with an older state).
 */
export function checkJobSeq(seq: number, last: number | undefined, orEqual = false): void {
  if (last === undefined || seq > last || (orEqual && seq === last)) return;
  throw new SignetResponseError(
    'BAD_JOB_SEQUENCE',
    orEqual
      ? `the job's state went back: seq ${seq} after ${last} was seen (an old response replayed?)`
      : `the job's event is out of order: seq ${seq} after ${last} (replayed or reordered?)`,
  );
}

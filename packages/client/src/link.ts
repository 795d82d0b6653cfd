import {
  isJobStatus,
  isTerminal,
  type JobState,
  jobStateFromReply,
  type RequestEnvelope,
  type ResponseEnvelope,
} from '@signet/protocol';
import { type Operation, TRPCClientError, type TRPCLink } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import { type Observer, observable } from '@trpc/server/observable';
import { EventSource } from 'eventsource';
import {
  checkUnsignedError,
  type SignetCredentials,
  signRequest,
  verifyRefusal,
  verifyResponse,
} from './envelopes.ts';
import { SignetResponseError } from './errors.ts';
import { checkJobSeq, jobOf, withJobSeq } from './job-sequence.ts';

export interface SignetLinkOptions extends SignetCredentials {
  /** The server's base URL, e.g. `http://127.0.0.1:8787` (tools live under `/trpc/`). */
  url: string;
  /** Milliseconds since the epoch; defaults to `Date.now`. */
  now?: () => number;
  fetch?: typeof fetch;
  /** How often a dropped watch_job stream reconnects before giving up (default 5). */
  maxReconnects?: number;
}

/**
 * What the procedure returned, taken out of a verified envelope. A job's state is told by the
 * envelope's status (DESIGN 1.7), never by the tool's name: a tool answers `ok`, a job start
 * `accepted`, and job control the job's own status. A job response must name (in its signed
 * `job`) the job asked about, or for a start the job it started; its `seq` goes with the state
 * (`jobSeq`), for the job's handle to check.
 */
function unwrap(input: unknown, envelope: ResponseEnvelope): unknown {
  if (isJobStatus(envelope.status)) {
    const jobId = (input as { job_id: string }).job_id;
    const { seq } = jobOf(envelope, jobId);
    return withJobSeq(jobStateFromReply(jobId, envelope), seq);
  }
  if (envelope.status === 'accepted') {
    jobOf(envelope, String((envelope.result as { job_id?: unknown } | null)?.job_id));
  }
  return envelope.result;
}

function responseError(cause: SignetResponseError) {
  return TRPCClientError.from(cause);
}

/**
 * A STALE_REQUEST's correction of the clock is taken only from a round trip this fast (issue 21,
 * W6): the server read its clock between sending and receipt, so the correction is off by at
 * most the round trip, and a man in the middle who held the call or its answer makes it long.
 */
const CORRECTION_MAX_ROUND_TRIP_MS = 2_000;
/** And never by more than a day: a clock that far off is its owner's to fix. */
const CORRECTION_MAX_OFFSET_MS = 24 * 60 * 60 * 1_000;

/**
 * The verified error of a call: a signed refusal checked like any response, or an unsigned one
 * whose reason may come unsigned (issue 21, W7); otherwise, the client's own refusal of it.
 */
function checkedError(
  opts: SignetCredentials,
  request: RequestEnvelope,
  data: { reason?: unknown; envelope?: unknown } | undefined,
): ResponseEnvelope | undefined {
  if (data?.envelope === undefined) {
    checkUnsignedError(data);
    return undefined;
  }
  return verifyRefusal(opts, request, data);
}

/**
 * Signs every call (fresh nonce and ts_ms on every attempt) and checks every response before it
 * reaches the caller. Mutations continue to the next link (an httpLink); watch_job subscriptions
 * are served here over SSE, so that each reconnect is a newly signed call.
 */
export function signetLink<TRouter extends AnyTRPCRouter>(
  opts: SignetLinkOptions,
): TRPCLink<TRouter> {
  const localNow = opts.now ?? Date.now;
  /** Server clock minus ours, learnt from a signed STALE_REQUEST refusal. */
  let offset = 0;
  const now = () => localNow() + offset;

  /**
   * Learns the server's clock from a signed STALE_REQUEST refusal to a call sent at `sentAt`
   * (local clock), if its round trip was fast and the correction is within bounds; whether it did.
   */
  const correctClock = (envelope: ResponseEnvelope, sentAt: number): boolean => {
    if (envelope.error?.code !== 'STALE_REQUEST') return false;
    const details = envelope.error.details as { server_ts_ms?: unknown } | undefined;
    const serverNow = details?.server_ts_ms;
    const receivedAt = localNow();
    const roundTrip = receivedAt - sentAt;
    if (typeof serverNow !== 'number' || !Number.isFinite(serverNow)) return false;
    if (!(roundTrip >= 0 && roundTrip <= CORRECTION_MAX_ROUND_TRIP_MS)) return false;
    const correction = serverNow - receivedAt;
    if (Math.abs(correction) > CORRECTION_MAX_OFFSET_MS) return false;
    offset = correction;
    return true;
  };

  return () =>
    ({ op, next }) => {
      if (op.type === 'subscription') return watch(op);
      return observable((observer) => {
        let subscription: { unsubscribe(): void } | undefined;
        let correctedClock = false;
        const attempt = () => {
          let request: RequestEnvelope;
          try {
            request = signRequest(opts, op.path, op.input, { now: now() });
          } catch (error) {
            observer.error(TRPCClientError.from(error as Error));
            return;
          }
          const sentAt = localNow();
          subscription = next({ ...op, input: request }).subscribe({
            next(result) {
              try {
                const envelope = verifyResponse(opts, request, result.result.data);
                observer.next({
                  ...result,
                  result: { type: 'data', data: unwrap(op.input, envelope) },
                });
              } catch (error) {
                observer.error(responseError(error as SignetResponseError));
              }
            },
            error(error) {
              let envelope: ResponseEnvelope | undefined;
              try {
                envelope = checkedError(opts, request, error.data as object | undefined);
              } catch (problem) {
                observer.error(responseError(problem as SignetResponseError));
                return;
              }
              // One retry per call, with the clock corrected (else the refusal goes to the caller).
              if (envelope && !correctedClock && correctClock(envelope, sentAt)) {
                correctedClock = true;
                attempt();
                return;
              }
              observer.error(error);
            },
            complete() {
              observer.complete();
            },
          });
        };
        attempt();
        return () => subscription?.unsubscribe();
      });
    };

  function watch(op: Operation) {
    return observable<{ result: { type: 'data'; data: JobState } }, TRPCClientError<TRouter>>(
      (
        observer: Observer<{ result: { type: 'data'; data: JobState } }, TRPCClientError<TRouter>>,
      ) => {
        const input = op.input as { job_id: string; after?: string };
        let after = input.after;
        /** The signed seq of the last event, over every reconnect: each must come after it. */
        let lastSeq: number | undefined;
        let source: EventSource | undefined;
        let failures = 0;
        let finished = false;
        let timer: NodeJS.Timeout | undefined;
        const maxReconnects = opts.maxReconnects ?? 5;

        const stop = () => {
          finished = true;
          clearTimeout(timer);
          source?.close();
        };
        const fail = (error: TRPCClientError<TRouter>) => {
          if (finished) return;
          stop();
          observer.error(error);
        };

        const connect = () => {
          const request = signRequest(
            opts,
            op.path,
            after === undefined ? { job_id: input.job_id } : { job_id: input.job_id, after },
            { now: now() },
          );
          const url = `${opts.url}/trpc/${op.path}?input=${encodeURIComponent(JSON.stringify(request))}`;
          const current = new EventSource(url, opts.fetch ? { fetch: opts.fetch } : undefined);
          source = current;
          current.addEventListener('message', (event) => {
            if (finished) return;
            let envelope: ResponseEnvelope;
            let seq: number;
            try {
              envelope = verifyResponse(opts, request, JSON.parse(event.data));
              // Validly signed for this very call, an event may still be one replayed in it.
              seq = jobOf(envelope, input.job_id).seq;
              checkJobSeq(seq, lastSeq);
            } catch (error) {
              fail(
                responseError(
                  error instanceof SignetResponseError
                    ? error
                    : new SignetResponseError('BAD_RESPONSE_ENVELOPE', 'unreadable event'),
                ),
              );
              return;
            }
            failures = 0;
            lastSeq = seq;
            // (The resume cursor is the event's id, which the server sets to the signed seq.)
            after = String(seq);
            const state = withJobSeq(jobStateFromReply(input.job_id, envelope), seq);
            observer.next({ result: { type: 'data', data: state } });
            if (isTerminal(state.status)) {
              stop();
              observer.complete();
            }
          });
          current.addEventListener('serialized-error', (event) => {
            let shape: unknown;
            try {
              shape = JSON.parse(event.data);
            } catch {
              shape = { message: 'watch failed' };
            }
            const error = TRPCClientError.from({
              error: shape,
            } as object) as TRPCClientError<TRouter>;
            try {
              checkedError(opts, request, (shape as { data?: object }).data);
            } catch (problem) {
              fail(responseError(problem as SignetResponseError));
              return;
            }
            fail(error);
          });
          // The stream ends at a signed terminal state (the message handler stops there); an
          // unsigned `return` before one proves nothing: a dropped stream (issue 21, W8).
          current.addEventListener('return', () => dropped(current));
          current.onerror = () => dropped(current);
        };

        /** The stream dropped: a reconnect must be a newly signed call, never the old URL. */
        const dropped = (current: EventSource) => {
          if (finished) return;
          current.close();
          failures++;
          if (failures > maxReconnects) {
            fail(TRPCClientError.from(new Error('watch_job: the event stream keeps dropping')));
            return;
          }
          timer = setTimeout(connect, Math.min(2_000, 100 * 2 ** (failures - 1)));
        };

        connect();
        return stop;
      },
    );
  }
}

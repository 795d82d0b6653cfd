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
import { type SignetCredentials, signRequest, verifyRefusal, verifyResponse } from './envelopes.ts';
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
 * Signs every call (fresh nonce and ts_ms on every attempt) and checks every response before it
 * reaches the caller. Mutations continue to the next link (an httpLink); watch_job subscriptions
 * are served here over SSE, so that each reconnect is a newly signed call.
 */
export function signetLink<TRouter extends AnyTRPCRouter>(
  opts: SignetLinkOptions,
): TRPCLink<TRouter> {
  const localNow = opts.now ?? Date.now;
  /** Server clock minus ours, learnt once from a STALE_REQUEST refusal. */
  let offset = 0;
  const now = () => localNow() + offset;

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
              const data = error.data as { reason?: string; envelope?: unknown } | undefined;
              if (data?.envelope !== undefined) {
                // A signed refusal: it must prove itself like any response.
                let envelope: ResponseEnvelope;
                try {
                  envelope = verifyRefusal(opts, request, data);
                } catch (problem) {
                  observer.error(responseError(problem as SignetResponseError));
                  return;
                }
                const serverNow = (
                  envelope.error?.details as { server_ts_ms?: unknown } | undefined
                )?.server_ts_ms;
                if (
                  envelope.error?.code === 'STALE_REQUEST' &&
                  !correctedClock &&
                  typeof serverNow === 'number'
                ) {
                  correctedClock = true;
                  offset = serverNow - localNow();
                  attempt();
                  return;
                }
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
            const data = (shape as { data?: { reason?: unknown; envelope?: unknown } }).data;
            if (data?.envelope !== undefined) {
              try {
                verifyRefusal(opts, request, data);
              } catch (problem) {
                fail(responseError(problem as SignetResponseError));
                return;
              }
            }
            fail(error);
          });
          current.addEventListener('return', () => {
            if (finished) return;
            stop();
            observer.complete();
          });
          current.onerror = () => {
            if (finished) return;
            // The stream dropped: a reconnect must be a newly signed call, never the old URL.
            current.close();
            failures++;
            if (failures > maxReconnects) {
              fail(TRPCClientError.from(new Error('watch_job: the event stream keeps dropping')));
              return;
            }
            timer = setTimeout(connect, Math.min(2_000, 100 * 2 ** (failures - 1)));
          };
        };

        connect();
        return stop;
      },
    );
  }
}

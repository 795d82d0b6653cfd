import type { JobProgress, JobState } from '@signet/protocol';
import { TRPCClientError } from '@trpc/client';
import { JobFailedError, SignetResponseError, UnsignedReasonError } from './errors.ts';
import { checkJobSeq, jobSeq } from './job-sequence.ts';

/** The job-control part of a Signet client, which every Signet router has. */
export interface JobControlClient {
  poll_job: { mutate(input: { job_id: string }): Promise<JobState> };
  cancel_job: { mutate(input: { job_id: string }): Promise<JobState> };
  watch_job: {
    subscribe(
      input: { job_id: string; after?: string },
      handlers: {
        onData(state: JobState): void;
        onError(error: unknown): void;
        onComplete(): void;
      },
    ): { unsubscribe(): void };
  };
}

export interface WaitOptions {
  /** Called with every progress report the server sends while the job runs. */
  onProgress?: (progress: JobProgress, state: JobState<unknown>) => void;
  /** Called on every state the handle learns of. */
  onState?: (state: JobState<unknown>) => void;
  /** Stops waiting (the job goes on; call `cancel()` to stop it). */
  signal?: AbortSignal;
  /** Watch over SSE (default) or only poll. */
  watch?: boolean;
  /** First poll interval in ms (default 100); it grows by half each time, up to `maxPollMs`. */
  pollMs?: number;
  maxPollMs?: number;
}

type Typed<O> = JobState<O>;

/** A started job, typed with its output. */
export class JobHandle<O> {
  /** The highest signed seq (`jobSeq`) of the job's states this handle has seen. */
  private seenSeq: number | undefined;

  constructor(
    private readonly client: JobControlClient,
    readonly id: string,
  ) {}

  /**
   * The job's state now. Refused (`SignetResponseError` BAD_JOB_SEQUENCE) if it is older than a
   * state this handle had seen before asking: the job's seq never goes back.
   */
  async poll(): Promise<Typed<O>> {
    const floor = this.seenSeq;
    return this.saw((await this.client.poll_job.mutate({ job_id: this.id })) as Typed<O>, floor);
  }

  async cancel(): Promise<Typed<O>> {
    const floor = this.seenSeq;
    return this.saw((await this.client.cancel_job.mutate({ job_id: this.id })) as Typed<O>, floor);
  }

  /**
   * Checks a state that answers a request sent when `floor` was the highest seq seen (answers to
   * requests in flight together may arrive in any order), then remembers its seq.
   */
  private saw(state: Typed<O>, floor: number | undefined): Typed<O> {
    const seq = jobSeq(state);
    if (seq === undefined) return state;
    checkJobSeq(seq, floor, true);
    if (this.seenSeq === undefined || seq > this.seenSeq) this.seenSeq = seq;
    return state;
  }

  /** Every change of the job, as the server pushes it, until it finishes. */
  watch(opts: { signal?: AbortSignal } = {}): AsyncIterable<Typed<O>> {
    const client = this.client;
    const id = this.id;
    // (The link checks that each event comes after the last; the handle remembers the latest.)
    const seen = (state: Typed<O>) => this.saw(state, undefined);
    return {
      [Symbol.asyncIterator]() {
        const queue: Array<IteratorResult<Typed<O>>> = [];
        let failure: unknown;
        let wake: (() => void) | undefined;
        const push = (item: IteratorResult<Typed<O>>) => {
          queue.push(item);
          wake?.();
        };
        const subscription = client.watch_job.subscribe(
          { job_id: id },
          {
            onData: (state) => push({ value: seen(state as Typed<O>), done: false }),
            onError: (error) => {
              failure = error ?? new Error('watch failed');
              wake?.();
            },
            onComplete: () => push({ value: undefined, done: true }),
          },
        );
        const onAbort = () => push({ value: undefined, done: true });
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        const close = () => {
          subscription.unsubscribe();
          opts.signal?.removeEventListener('abort', onAbort);
        };
        return {
          async next() {
            while (queue.length === 0 && failure === undefined) {
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
              wake = undefined;
            }
            const item = queue.shift();
            if (item) {
              if (item.done) close();
              return item;
            }
            close();
            throw failure;
          },
          async return() {
            close();
            return { value: undefined, done: true };
          },
        };
      },
    };
  }

  /**
   * Waits for the job's output. Watches the job over SSE, and falls back to polling with
   * backoff if the stream cannot be had (it dropped, it failed without a signed refusal, or the
   * client has its cap of streams open on the server). Throws `JobFailedError` if the job fails
   * or is cancelled.
   */
  async result(opts: WaitOptions = {}): Promise<O> {
    let state: Typed<O> | undefined;
    const seen = (next: Typed<O>) => {
      state = next;
      opts.onState?.(next);
      if ((next.status === 'running' || next.status === 'queued') && next.progress) {
        opts.onProgress?.(next.progress, next);
      }
    };
    if (opts.watch !== false) {
      try {
        for await (const next of this.watch({ signal: opts.signal })) seen(next);
      } catch (error) {
        if (!(error instanceof TRPCClientError) || endsTheWait(error)) throw error;
      }
    }
    let interval = opts.pollMs ?? 100;
    while (!state || !isDone(state)) {
      opts.signal?.throwIfAborted();
      if (state) {
        await sleep(interval, opts.signal);
        interval = Math.min(interval * 1.5, opts.maxPollMs ?? 2_000);
      }
      seen(await this.poll());
    }
    return outputOf(state);
  }
}

/**
 * Whether a watch's failure is final: a signed refusal (e.g. JOB_NOT_FOUND), but not one for the
 * client's cap on open streams (RATE_LIMITED), or the client's refusal of a signed answer. What
 * is unsigned proves nothing (issue 21, W7): a dropped stream, or an unsigned error whatever
 * reason it claims, is followed by polling, each poll answered signed.
 */
function endsTheWait(error: TRPCClientError<never>): boolean {
  if (error.cause instanceof SignetResponseError) {
    return !(error.cause instanceof UnsignedReasonError);
  }
  // (The link passes on a refusal with an envelope only once that envelope has verified.)
  const data = error.data as { reason?: unknown; envelope?: unknown } | undefined;
  return data?.envelope !== undefined && data.reason !== 'RATE_LIMITED';
}

function isDone<O>(state: JobState<O>): boolean {
  return state.status === 'done' || state.status === 'error' || state.status === 'cancelled';
}

function outputOf<O>(state: Typed<O>): O {
  switch (state.status) {
    case 'done':
      return state.output;
    case 'error':
      throw new JobFailedError(state.job_id, state.error.code, state.error.message);
    case 'cancelled':
      throw new JobFailedError(state.job_id, 'CANCELLED', 'the job was cancelled');
    default:
      throw new Error(`job ${state.job_id} is still ${state.status}`);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** A handle on the job that `ticket` (what a job tool's mutate returned) started. */
export function jobHandle<O>(
  client: JobControlClient,
  ticket: { job_id: string; readonly '~output'?: O },
): JobHandle<O> {
  return new JobHandle<O>(client, ticket.job_id);
}

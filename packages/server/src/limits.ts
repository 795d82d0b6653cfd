import { SignetError } from './errors.ts';

// What one client may hold open at once (issue #17). Past a cap a call is refused with 429
// RATE_LIMITED, between checks 5 and 6 of DESIGN 1.4, so its nonce is not spent.

/** Per-client caps; `Infinity` for none. */
export interface ClientLimits {
  /** watch_job streams open at once per client, in this process (`SIGNET_MAX_WATCHES_PER_CLIENT`). */
  watchStreams: number;
  /**
   * Unfinished (queued or running) jobs per client, across the deployment
   * (`SIGNET_MAX_JOBS_PER_CLIENT`). A retried start of a job that exists is answered at the cap.
   */
  unfinishedJobs: number;
}

export const DEFAULT_CLIENT_LIMITS: Readonly<ClientLimits> = {
  watchStreams: 100,
  unfinishedJobs: 1_000,
};

/** `limits` with the defaults for what is left out; refuses a cap that is not a count. */
export function clientLimits(limits: Partial<ClientLimits> = {}): ClientLimits {
  const resolved = { ...DEFAULT_CLIENT_LIMITS, ...limits };
  for (const [name, value] of Object.entries(resolved)) {
    if (!(value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && value >= 1))) {
      throw new Error(`clientLimits.${name} must be a positive integer or Infinity, not ${value}`);
    }
  }
  return resolved;
}

/** The refusal of a watch past the client's cap (no Retry-After: a stream has no headers left). */
export function watchStreamsRefusal(max: number): SignetError {
  return new SignetError(
    'RATE_LIMITED',
    `this client has ${max} watch streams open already; close one, or poll`,
    { details: { limit: 'watch_streams', max } },
  );
}

/** A count per client, that forgets a client at zero. */
export class ClientCounts {
  private readonly counts = new Map<string, number>();

  get(clientId: string): number {
    return this.counts.get(clientId) ?? 0;
  }

  add(clientId: string, delta: number): void {
    const count = (this.counts.get(clientId) ?? 0) + delta;
    if (count > 0) this.counts.set(clientId, count);
    else this.counts.delete(clientId);
  }
}

/**
 * The watch_job streams each client has open in this process. A slot is taken before the nonce
 * claim and given back when the stream ends in any way: its updates run out, the client goes
 * (the call's signal), or the call is refused after all.
 */
export class WatchSlots {
  private readonly open = new ClientCounts();

  constructor(readonly max: number) {}

  /** The streams `clientId` has open now. */
  held(clientId: string): number {
    return this.open.get(clientId);
  }

  /**
   * Takes a slot for a stream of `clientId`, given back by the release it returns (which may be
   * called any number of times) or when `signal` aborts; refuses past the cap.
   */
  take(clientId: string, signal: AbortSignal | undefined): () => void {
    if (this.open.get(clientId) >= this.max) throw watchStreamsRefusal(this.max);
    this.open.add(clientId, 1);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      signal?.removeEventListener('abort', release);
      this.open.add(clientId, -1);
    };
    if (signal?.aborted) release();
    else signal?.addEventListener('abort', release, { once: true });
    return release;
  }
}

/** Per-client token buckets: `ratePerSecond` sustained, bursts up to `burst`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {}

  /** Takes one token; returns the seconds to wait (for Retry-After) when there is none. */
  take(clientId: string, now: number): number | undefined {
    const bucket = this.buckets.get(clientId);
    if (!bucket) {
      this.buckets.set(clientId, { tokens: this.burst - 1, at: now });
      return undefined;
    }
    // Time only counts forwards: a wall clock stepping back (and forth) refills nothing.
    if (now > bucket.at) {
      const refill = ((now - bucket.at) / 1000) * this.ratePerSecond;
      bucket.tokens = Math.min(this.burst, bucket.tokens + refill);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerSecond));
  }
}

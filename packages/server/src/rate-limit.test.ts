import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.ts';

/** Takes `n` tokens at `now`; returns how many were granted. */
function takeMany(limiter: RateLimiter, client: string, n: number, now: number): number {
  let granted = 0;
  for (let i = 0; i < n; i++) if (limiter.take(client, now) === undefined) granted++;
  return granted;
}

describe('RateLimiter (per-client token buckets)', () => {
  it('grants a full burst at once, then refuses with a whole number of seconds to wait', () => {
    const limiter = new RateLimiter(5, 5);
    expect(takeMany(limiter, 'a', 5, 1_000)).toBe(5);
    const wait = limiter.take('a', 1_000);
    expect(wait).toBe(1);
    expect(Number.isInteger(wait)).toBe(true);
  });

  it('refills at the sustained rate, never above the burst', () => {
    const limiter = new RateLimiter(5, 5);
    expect(takeMany(limiter, 'a', 5, 0)).toBe(5);
    expect(limiter.take('a', 199)).toBeGreaterThanOrEqual(1); // 0.995 tokens: not yet
    expect(limiter.take('a', 200)).toBeUndefined(); // one token after 200 ms at 5/s
    expect(limiter.take('a', 200)).toBeGreaterThanOrEqual(1);
    // An hour idle refills the burst, not 18 000 tokens.
    expect(takeMany(limiter, 'a', 100, 3_600_000)).toBe(5);
  });

  it('keeps clients apart', () => {
    const limiter = new RateLimiter(1, 2);
    expect(takeMany(limiter, 'a', 10, 0)).toBe(2);
    expect(takeMany(limiter, 'b', 10, 0)).toBe(2);
    expect(limiter.take('a', 0)).toBeDefined();
  });

  it('asks to wait long enough for one token at slow rates', () => {
    const limiter = new RateLimiter(1, 1);
    expect(limiter.take('a', 0)).toBeUndefined();
    expect(limiter.take('a', 0)).toBe(1);
    expect(limiter.take('a', 999)).toBe(1);
    expect(limiter.take('a', 1_000)).toBeUndefined();
  });

  it('a refused call costs nothing: retrying after Retry-After succeeds', () => {
    const limiter = new RateLimiter(5, 5);
    expect(takeMany(limiter, 'a', 5, 0)).toBe(5);
    // A client hammering while limited does not push its own recovery back.
    for (let t = 0; t < 200; t += 10) expect(limiter.take('a', t)).toBeDefined();
    const wait = limiter.take('a', 0)!;
    expect(limiter.take('a', wait * 1_000)).toBeUndefined();
  });

  it('a clock stepping back grants no extra tokens', () => {
    const limiter = new RateLimiter(5, 5);
    expect(takeMany(limiter, 'a', 5, 10_000)).toBe(5);
    // The wall clock steps back 1 s, then returns to where it was: no time has really passed
    // since the burst was spent, so nothing may be granted.
    expect(limiter.take('a', 9_000)).toBeDefined();
    expect(takeMany(limiter, 'a', 5, 10_000)).toBe(0);
  });
});

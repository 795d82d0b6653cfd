import { describe, expect, it } from 'vitest';
import { NonceIndex, nonceKey } from './nonce-index.ts';

describe('NonceIndex', () => {
  it('refuses a key until it is released, then takes it again', () => {
    const index = new NonceIndex();
    const key = nonceKey('client-a', 'nonce-0000000001');
    expect(index.claim(key, 60_000)).toBe(true);
    expect(index.claim(key, 60_000)).toBe(false);
    index.release(key);
    expect(index.claim(key, 60_000)).toBe(true);
    expect(index.claim(key, 60_000)).toBe(false);
  });

  it('keeps keys that share a probe chain apart when one in the middle is released', () => {
    const index = new NonceIndex();
    // Equal high bits: the same first slot, so each probes past the others.
    const keys = [1, 2, 3].map((n) => ({ hi: n, lo: n }));
    for (const key of keys) expect(index.claim(key, 60_000)).toBe(true);
    index.release(keys[1]!);
    expect(index.claim(keys[2]!, 60_000)).toBe(false);
    expect(index.claim(keys[0]!, 60_000)).toBe(false);
    expect(index.claim(keys[1]!, 60_000)).toBe(true);
  });

  it('grows as keys arrive and shrinks back once they are pruned', () => {
    const index = new NonceIndex();
    for (let i = 0; i < 100_000; i++) {
      expect(index.claim(nonceKey('c', `nonce-${i}-padding`), 10_000)).toBe(true);
    }
    expect(index.size).toBe(100_000);
    expect(index.prune(20_000)).toBe(100_000);
    expect(index.size).toBe(0);
    expect(index.claim(nonceKey('c', 'nonce-1-padding'), 30_000)).toBe(true);
  });

  it('keeps an expiry too far ahead for a slot, and frees it once it has passed', () => {
    const index = new NonceIndex();
    const day = 86_400_000;
    const near = nonceKey('c', 'near-nonce-000001');
    const far = nonceKey('c', 'far-nonce-0000001');
    expect(index.claim(near, 1_000_000)).toBe(true);
    expect(index.claim(far, 1_000_000 + 40 * day)).toBe(true);
    expect(index.size).toBe(2);
    expect(index.claim(far, 1_000_000)).toBe(false);
    // Prunes move the base up; the far one stays refused until its own expiry.
    expect(index.prune(2_000_000)).toBe(1);
    expect(index.claim(near, 9_000_000)).toBe(true);
    expect(index.claim(far, 9_000_000)).toBe(false);
    expect(index.prune(1_000_000 + 39 * day)).toBe(1);
    expect(index.claim(far, 9_000_000)).toBe(false);
    expect(index.prune(1_000_000 + 41 * day)).toBe(1);
    expect(index.claim(far, 2_000_000 + 41 * day)).toBe(true);
  });

  it('never forgets a nonce before its expiry, whatever the order of claims and prunes', () => {
    const index = new NonceIndex();
    const expiries = new Map<number, number>();
    let now = 1_700_000_000_000;
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 2_000; i++) {
        const n = round * 2_000 + i;
        // Expiries from the past to hours ahead, as clients' clocks and windows allow.
        const expires = now + ((n * 7919) % 20_000) * 1_000 - 5_000_000;
        expect(index.claim(nonceKey('c', `nonce-${n}-padding`), expires)).toBe(true);
        expiries.set(n, expires);
      }
      now += 600_000;
      index.prune(now);
      for (const [n, expires] of expiries) {
        const refused = !index.claim(nonceKey('c', `nonce-${n}-padding`), expires);
        if (expires >= now) expect(refused, `nonce ${n}`).toBe(true);
        if (!refused) index.release(nonceKey('c', `nonce-${n}-padding`));
        if (expires < now - 1_000) expiries.delete(n);
      }
    }
  });

  it('tells clients apart even with the same nonce, and nonces that differ only in case', () => {
    expect(nonceKey('a', 'nonce-0000000001')).not.toEqual(nonceKey('b', 'nonce-0000000001'));
    expect(nonceKey('a', 'nonce-aaaaaaaaaa')).not.toEqual(nonceKey('a', 'nonce-AAAAAAAAAA'));
    // Length-prefixed: ("ab", "c…") and ("a", "bc…") are different pairs.
    expect(nonceKey('ab', 'cdefghijklmnopqr')).not.toEqual(nonceKey('a', 'bcdefghijklmnopqr'));
  });
});

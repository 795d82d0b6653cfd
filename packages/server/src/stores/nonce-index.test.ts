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
    // Equal low bits of hi ^ lo: the same first slot, so each probes past the others.
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

  it('tells clients apart even with the same nonce, and nonces that differ only in case', () => {
    expect(nonceKey('a', 'nonce-0000000001')).not.toEqual(nonceKey('b', 'nonce-0000000001'));
    expect(nonceKey('a', 'nonce-aaaaaaaaaa')).not.toEqual(nonceKey('a', 'nonce-AAAAAAAAAA'));
    // Length-prefixed: ("ab", "c…") and ("a", "bc…") are different pairs.
    expect(nonceKey('ab', 'cdefghijklmnopqr')).not.toEqual(nonceKey('a', 'bcdefghijklmnopqr'));
  });
});

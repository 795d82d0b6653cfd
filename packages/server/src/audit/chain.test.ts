import { canonicalize } from '@signet/protocol';
import { describe, expect, it } from 'vitest';
import { type CallEntry, type JobEntry, lineOf } from './chain.ts';

// lineOf writes call and job entries member by member: it must be exactly what the RFC 8785
// canonicalizer writes, for any values, or the verifier would refuse a log it wrote.

const STRINGS = [
  '',
  'client-001',
  'é',
  '日本',
  'quote " and \\ backslash',
  'tab\tnew\nline',
  '😀',
  '\u0000\u001f\u007f',
  '\u2028',
];
const pick = (i: number) => STRINGS[i % STRINGS.length]!;

function call(i: number): CallEntry {
  return {
    seq: i,
    at: 1_796_000_000_000 + i,
    prev: 'ab'.repeat(32),
    type: 'call',
    client_id: pick(i),
    ...(i % 2 ? { kid: pick(i + 1) } : {}),
    tool: pick(i + 2),
    request_id: pick(i + 3),
    nonce: pick(i + 4),
    outcome: i % 3 ? { status: 'error', reason: pick(i + 5) } : { status: pick(i + 5) },
    args_sha256: 'cd'.repeat(32),
    ...(i % 4 === 1 ? { envelope: `{"args":${JSON.stringify(pick(i))}}` } : {}),
  };
}

function job(i: number): JobEntry {
  return {
    seq: i,
    at: 1_796_000_000_000 + i,
    prev: 'ef'.repeat(32),
    type: 'job',
    job_id: pick(i),
    client_id: pick(i + 1),
    tool: pick(i + 2),
    status: pick(i + 3),
    job_seq: i * 7,
  };
}

describe('lineOf', () => {
  it('writes call and job entries exactly as the JCS canonicalizer does', () => {
    for (let i = 0; i < 200; i++) {
      expect(lineOf(call(i))).toBe(canonicalize(call(i)));
      expect(lineOf(job(i))).toBe(canonicalize(job(i)));
    }
  });

  it('leaves out what an entry of its kind does not hold, so such a line never matches', () => {
    const extra = { ...call(3), forged: true } as CallEntry;
    expect(lineOf(extra)).not.toBe(canonicalize(extra));
    const retyped = { ...job(2), job_seq: '14' } as unknown as JobEntry;
    expect(() => lineOf(retyped)).toThrow();
    const lone = { ...call(1), tool: '\ud800' };
    expect(() => lineOf(lone)).toThrow();
  });
});

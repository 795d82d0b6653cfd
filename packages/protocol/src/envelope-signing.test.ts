// The request path's envelope signing (fixed member order, canonicalizer only for args/result)
// must produce exactly what the generic `signingInput` does, for any envelope the schema accepts.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize, canonicalJson, NotCanonicalizableError } from './canonical.ts';
import {
  RESPONSE_STATUSES,
  type UnsignedRequestEnvelope,
  type UnsignedResponseEnvelope,
} from './envelope.ts';
import { sharedFile } from './shared-files.ts';
import {
  hmacHex,
  requestSigningInput,
  responseSigningInput,
  signResponse,
  verify,
} from './signing.ts';

const VECTORS = JSON.parse(readFileSync(sharedFile('vectors/signing/envelopes.json'), 'utf8')) as {
  secret: string;
  requests: Array<{ envelope: Record<string, unknown>; canonical: string }>;
  responses: Array<{ envelope: Record<string, unknown>; canonical: string }>;
};

// Any JSON, with keys and strings drawn from the whole of Unicode (well-formed).
const json = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' });
const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 40 });

const requests = fc.record(
  {
    v: fc.string({ maxLength: 32 }),
    request_id: text,
    ts_ms: fc.integer({ min: -1e15, max: 1e15 }),
    client_id: text,
    server_id: text,
    tool: text,
    args: fc.dictionary(fc.string({ unit: 'binary' }), json, { maxKeys: 6 }),
    nonce: fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/),
    kid: text,
  },
  { requiredKeys: ['v', 'request_id', 'ts_ms', 'client_id', 'server_id', 'tool', 'args', 'nonce'] },
);

const responses = fc.record({
  v: fc.string({ maxLength: 32 }),
  request_id: text,
  ts_ms: fc.integer({ min: 0, max: 1e15 }),
  ok: fc.boolean(),
  server_id: text,
  nonce: fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/),
  status: fc.constantFrom(...RESPONSE_STATUSES),
  result: fc.option(fc.dictionary(fc.string({ unit: 'binary' }), json, { maxKeys: 6 })),
  error: fc.option(
    fc.record(
      { code: fc.string(), message: fc.string({ unit: 'binary' }), details: json },
      { requiredKeys: ['code', 'message'] },
    ),
  ),
});

describe('canonicalJson', () => {
  // Keys that JSON.stringify would not emit in RFC 8785 order: integer-like keys come first in
  // numeric order, others in insertion order.
  const key = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 6 }),
    fc.constantFrom('10', '9', '0', '01', '-1', '1.5', 'a', 'B', '\u00e9', '\ud83d\ude00'),
  );
  const value = fc.letrec((tie) => ({
    json: fc.oneof(
      { depthSize: 'small' },
      fc.constantFrom(null, true, false, 0, -0, 1e21, 1e-7, 5e-324, 0.1, -123.456),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ unit: 'binary' }),
      fc.array(tie('json'), { maxLength: 4 }),
      fc.dictionary(key, tie('json'), { maxKeys: 5 }),
    ),
  })).json;

  it('is exactly what the canonicalize library writes, sorted keys or not', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(canonicalize(v));
      }),
      { numRuns: 2000 },
    );
    // Keys in insertion order that is not RFC 8785 order.
    expect(canonicalJson({ b: 1, a: { d: 1, c: 2 } })).toBe('{"a":{"c":2,"d":1},"b":1}');
    expect(canonicalJson({ 9: 1, 10: 2 })).toBe('{"10":2,"9":1}');
  });
});

describe('requestSigningInput', () => {
  it('matches signingInput on the vectors', () => {
    for (const { envelope, canonical } of VECTORS.requests) {
      const { signature: _, ...unsigned } = envelope;
      expect(requestSigningInput(unsigned as UnsignedRequestEnvelope)).toBe(canonical);
    }
  });

  it('matches signingInput on any envelope the schema accepts', () => {
    fc.assert(
      fc.property(requests, (envelope) => {
        expect(requestSigningInput(envelope as UnsignedRequestEnvelope)).toBe(
          canonicalize(envelope),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what cannot be canonicalized, as signingInput does', () => {
    const base = { ...VECTORS.requests[0]!.envelope } as UnsignedRequestEnvelope;
    expect(() => requestSigningInput({ ...base, args: { x: Number.NaN } })).toThrow(
      NotCanonicalizableError,
    );
    expect(() => requestSigningInput({ ...base, client_id: 'a\uD800' })).toThrow(
      NotCanonicalizableError,
    );
  });
});

describe('responseSigningInput and signResponse', () => {
  it('match signingInput on the vectors', () => {
    for (const { envelope, canonical } of VECTORS.responses) {
      const { signature: _, ...unsigned } = envelope;
      expect(responseSigningInput(unsigned as UnsignedResponseEnvelope)).toBe(canonical);
    }
  });

  it('match signingInput on any response, and the JSON text is the signed envelope', () => {
    fc.assert(
      fc.property(responses, (envelope) => {
        const unsigned = envelope as UnsignedResponseEnvelope;
        expect(responseSigningInput(unsigned)).toBe(canonicalize(unsigned));
        const signed = signResponse(unsigned, VECTORS.secret);
        // (Through JSON on both sides: the text has no -0.)
        expect(JSON.parse(signed.json)).toEqual(JSON.parse(JSON.stringify(signed.envelope)));
        expect(verify(JSON.parse(signed.json) as { signature: string }, VECTORS.secret)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('hmacHex', () => {
  it('is exactly what createHmac gives, for any key and message', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.uint8Array({ maxLength: 200 })),
        fc.string({ unit: 'binary', maxLength: 300 }),
        (key, message) => {
          const k = typeof key === 'string' ? key : Buffer.from(key);
          const expected = createHmac('sha256', k).update(message, 'utf8').digest();
          // Twice: the second call uses the cached pads.
          expect(hmacHex(k, message)).toBe(expected.toString('hex'));
          expect(hmacHex(k, message)).toBe(expected.toString('hex'));
        },
      ),
      { numRuns: 2000 },
    );
  });

  // Messages are written into one reused buffer when they fit, a buffer of their own otherwise.
  it('signs messages past the reused buffer, and short ones after long ones, as createHmac', () => {
    const key = 'k'.repeat(40);
    const messages = [
      'a',
      'é\u{1F600}'.repeat(30_000), // 90 000 UTF-16 units, more than 64 KiB as UTF-8
      'x'.repeat(21_824), // room needed 64 + 3 × 21 824 = 65 536: just fits
      'x'.repeat(21_825),
      'b',
      '\u{1F600}'.repeat(12_000),
      'a',
    ];
    for (const message of messages) {
      expect(hmacHex(key, message)).toBe(createHmac('sha256', key).update(message).digest('hex'));
    }
  });

  it('handles keys of exactly one block, longer ones (hashed first) and empty messages', () => {
    for (const length of [0, 1, 63, 64, 65, 200]) {
      const key = Buffer.alloc(length, 7);
      for (const message of ['', 'a', 'é\u{1F600}', 'x'.repeat(10_000)]) {
        expect(hmacHex(key, message)).toBe(
          createHmac('sha256', key).update(message, 'utf8').digest('hex'),
        );
      }
    }
  });
});

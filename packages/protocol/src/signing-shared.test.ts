// A response signed around a shared canonical result (issue 21, V2: one job update sent on many
// watch streams) must be byte for byte what `signResponse` makes: same signed bytes (DESIGN 1.2),
// same signature, same JSON text, for HMAC and Ed25519 keys.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ed25519PrivateKey, ed25519PublicKey, generateEd25519KeyPair } from './ed25519.ts';
import type { UnsignedResponseEnvelope } from './envelope.ts';
import { sharedFile } from './shared-files.ts';
import {
  CanonicalResult,
  responseSigningInput,
  signResponse,
  signResponseSharing,
  verify,
} from './signing.ts';

const VECTORS = JSON.parse(readFileSync(sharedFile('vectors/signing/envelopes.json'), 'utf8')) as {
  secret: string;
  responses: Array<{ envelope: Record<string, unknown>; canonical: string; signature: string }>;
};

const pair = generateEd25519KeyPair();
const privateKey = ed25519PrivateKey(pair.privateKey);
const publicKey = ed25519PublicKey(pair.publicKey);

const json = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' });
const responses = fc.record(
  {
    v: fc.constant('mcp/0.1'),
    request_id: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
    ts_ms: fc.integer({ min: 0, max: 1e15 }),
    ok: fc.boolean(),
    server_id: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
    nonce: fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/),
    status: fc.constantFrom('ok', 'done', 'running', 'error'),
    result: fc.option(fc.dictionary(fc.string({ unit: 'binary' }), json, { maxKeys: 6 })),
    error: fc.constant(null),
    kid: fc.string({ minLength: 1, maxLength: 8 }),
    job: fc.record({ id: fc.string({ minLength: 1, maxLength: 20 }), seq: fc.nat() }),
  },
  {
    requiredKeys: [
      'v',
      'request_id',
      'ts_ms',
      'ok',
      'server_id',
      'nonce',
      'status',
      'result',
      'error',
    ],
  },
);

function same(unsigned: UnsignedResponseEnvelope, key: typeof privateKey | string) {
  const whole = signResponse(unsigned, key);
  const shared = signResponseSharing(unsigned, CanonicalResult.of(unsigned.result), key);
  expect(shared.signature).toBe(whole.signature);
  expect(shared.json).toBe(whole.json);
  expect(`${shared.head}${shared.result.bytes.toString('utf8')}${shared.tail}`).toBe(whole.json);
  expect(shared.envelope).toEqual(whole.envelope);
}

describe('signResponseSharing', () => {
  it('signs the vectors exactly as signResponse does, and as the vectors say', () => {
    for (const { envelope, canonical, signature } of VECTORS.responses) {
      const { signature: _, ...unsigned } = envelope as unknown as UnsignedResponseEnvelope & {
        signature: string;
      };
      expect(responseSigningInput(unsigned)).toBe(canonical);
      const shared = signResponseSharing(
        unsigned,
        CanonicalResult.of(unsigned.result),
        VECTORS.secret,
      );
      expect(shared.signature).toBe(signature);
      same(unsigned, VECTORS.secret);
    }
  });

  it('matches signResponse on any response, with an HMAC or an Ed25519 key', () => {
    fc.assert(
      fc.property(responses, (envelope) => {
        const unsigned = envelope as UnsignedResponseEnvelope;
        same(unsigned, VECTORS.secret);
        same(unsigned, privateKey);
        const shared = signResponseSharing(
          unsigned,
          CanonicalResult.of(unsigned.result),
          privateKey,
        );
        expect(verify(JSON.parse(shared.json) as { signature: string }, publicKey)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('shares one copy of the result between the envelopes signed around it', () => {
    const result = CanonicalResult.of({ b: 'x'.repeat(1000), a: [1, 2] });
    expect(result.text).toBe(`{"a":[1,2],"b":"${'x'.repeat(1000)}"}`);
    const base = VECTORS.responses[0]!.envelope as unknown as UnsignedResponseEnvelope;
    const one = signResponseSharing({ ...base, nonce: 'a'.repeat(22) }, result, VECTORS.secret);
    const two = signResponseSharing({ ...base, nonce: 'b'.repeat(22) }, result, VECTORS.secret);
    expect(one.result.bytes).toBe(two.result.bytes);
    expect(one.signature).not.toBe(two.signature);
  });
});

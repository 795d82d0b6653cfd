import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ID_MAX_LENGTH,
  isRequestEnvelope,
  NONCE_PATTERN,
  newNonce,
  newRequestId,
  PROTOCOL_VERSION,
  RESPONSE_STATUSES,
  requestEnvelopeSchema,
  responseEnvelopeSchema,
} from './envelope.ts';
import { sharedFile } from './shared-files.ts';

interface Vector {
  envelope: Record<string, unknown>;
  signature: string;
}
const VECTORS = JSON.parse(readFileSync(sharedFile('vectors/signing/envelopes.json'), 'utf8')) as {
  requests: Vector[];
  responses: Vector[];
};

const signedRequests: Array<Record<string, unknown> & { signature: string }> = VECTORS.requests.map(
  (v) => ({ ...v.envelope, signature: v.signature }),
);
const signedResponses: Array<Record<string, unknown> & { signature: string }> =
  VECTORS.responses.map((v) => ({ ...v.envelope, signature: v.signature }));
const REQUEST = signedRequests[0]!;
const RESPONSE = signedResponses[0]!;

function request(overrides: Record<string, unknown>): Record<string, unknown> {
  return { ...REQUEST, ...overrides };
}

const accepts = (value: unknown) => requestEnvelopeSchema.safeParse(value).success;

describe('requestEnvelopeSchema (DESIGN 1.1)', () => {
  it('accepts every signed request vector, unchanged', () => {
    for (const envelope of signedRequests) {
      const parsed = requestEnvelopeSchema.safeParse(envelope);
      expect(parsed.success).toBe(true);
      expect(parsed.data).toEqual(envelope);
    }
  });

  it('is strict: an unknown field is rejected, at the top level', () => {
    expect(accepts(request({ extra: 1 }))).toBe(false);
    expect(accepts(request({ Signature: REQUEST.signature }))).toBe(false);
    const issues = requestEnvelopeSchema.safeParse(request({ extra: 1 })).error?.issues ?? [];
    expect(issues.map((i) => i.code)).toContain('unrecognized_keys');
  });

  it('requires every field except kid', () => {
    const withKid = signedRequests.find((e) => 'kid' in e)!;
    expect(Object.keys(withKid)).toHaveLength(10);
    for (const field of Object.keys(withKid)) {
      const { [field]: _removed, ...rest } = withKid;
      expect(accepts(rest), field).toBe(field === 'kid');
    }
    expect(accepts(request({ kid: 'k1' }))).toBe(true);
    expect(accepts(request({ kid: '' }))).toBe(false);
    expect(accepts(request({ kid: null }))).toBe(false);
  });

  it('nonce: 16-128 characters of [A-Za-z0-9_-]', () => {
    const ok = 'aZ09_-'.repeat(30);
    expect(accepts(request({ nonce: ok.slice(0, 16) }))).toBe(true);
    expect(accepts(request({ nonce: ok.slice(0, 15) }))).toBe(false);
    expect(accepts(request({ nonce: ok.slice(0, 128) }))).toBe(true);
    expect(accepts(request({ nonce: ok.slice(0, 129) }))).toBe(false);
    expect(accepts(request({ nonce: '' }))).toBe(false);
    for (const bad of ['+', '/', '=', ' ', '.', 'é', '\n']) {
      expect(accepts(request({ nonce: `${'a'.repeat(16)}${bad}` })), bad).toBe(false);
      expect(accepts(request({ nonce: `${bad}${'a'.repeat(16)}` })), bad).toBe(false);
    }
    expect(accepts(request({ nonce: 1234567890123456 }))).toBe(false);
  });

  it(`request_id and client_id: 1-${ID_MAX_LENGTH} characters`, () => {
    expect(ID_MAX_LENGTH).toBe(128);
    for (const field of ['request_id', 'client_id']) {
      expect(accepts(request({ [field]: '' })), field).toBe(false);
      expect(accepts(request({ [field]: 'x' })), field).toBe(true);
      expect(accepts(request({ [field]: 'x'.repeat(128) })), field).toBe(true);
      expect(accepts(request({ [field]: 'x'.repeat(129) })), field).toBe(false);
      expect(accepts(request({ [field]: 7 })), field).toBe(false);
    }
  });

  it('args must be a JSON object', () => {
    expect(accepts(request({ args: {} }))).toBe(true);
    expect(accepts(request({ args: { nested: { deep: [1, 'x', null] } } }))).toBe(true);
    for (const bad of [[], [1], null, 'x', 1, true, undefined]) {
      expect(accepts(request({ args: bad })), JSON.stringify(bad)).toBe(false);
    }
  });

  it('signature must be 64 lowercase hex characters', () => {
    const sig = REQUEST.signature;
    expect(accepts(request({ signature: sig }))).toBe(true);
    for (const bad of [
      sig.toUpperCase(),
      sig.replace(/[a-f]/, (c) => c.toUpperCase()),
      sig.slice(0, 63),
      `${sig}0`,
      `${sig.slice(0, 63)}g`,
      '',
      ` ${sig.slice(1)}`,
    ]) {
      expect(bad).not.toBe(sig);
      expect(accepts(request({ signature: bad })), bad).toBe(false);
    }
  });

  it('ts_ms must be an integer', () => {
    expect(accepts(request({ ts_ms: 0 }))).toBe(true);
    for (const bad of [1.5, '1763900000000', null, Number.NaN]) {
      expect(accepts(request({ ts_ms: bad })), String(bad)).toBe(false);
    }
  });

  it('keeps any v string (told apart later as UNSUPPORTED_VERSION), but bounded', () => {
    expect(accepts(request({ v: 'mcp/9.9' }))).toBe(true);
    expect(accepts(request({ v: 'x'.repeat(33) }))).toBe(false);
    expect(accepts(request({ v: 1 }))).toBe(false);
  });

  it('rejects non-objects', () => {
    for (const bad of [null, [], 'x', [REQUEST]]) expect(accepts(bad)).toBe(false);
  });
});

describe('isRequestEnvelope', () => {
  // Values at and around every limit of the schema, of every JSON type.
  const edges: unknown[] = [
    null,
    true,
    0,
    -1,
    1.5,
    2 ** 53 - 1,
    2 ** 53,
    -(2 ** 53),
    -(2 ** 53 - 1),
    1e21,
    '',
    'x',
    'x'.repeat(32),
    'x'.repeat(33),
    'x'.repeat(ID_MAX_LENGTH),
    'x'.repeat(ID_MAX_LENGTH + 1),
    'a'.repeat(15),
    'a'.repeat(16),
    'a'.repeat(128),
    'a'.repeat(129),
    'abc!defghijklmnopq',
    'f'.repeat(64),
    'F'.repeat(64),
    'f'.repeat(63),
    [],
    {},
    { a: 1 },
    [1],
  ];
  const edgy = fc.oneof(fc.constantFrom(...edges), fc.jsonValue({ maxDepth: 2 }));
  const keys = [
    'v',
    'request_id',
    'ts_ms',
    'client_id',
    'server_id',
    'tool',
    'args',
    'nonce',
    'kid',
    'signature',
  ];
  const mutated = fc
    .tuple(
      fc.constantFrom(...signedRequests),
      fc.array(
        fc.oneof(
          fc.record({ set: fc.constantFrom(...keys, 'extra', '__proto__'), to: edgy }),
          fc.record({ drop: fc.constantFrom(...keys) }),
        ),
        { maxLength: 3 },
      ),
    )
    .map(([base, changes]) => {
      // Through JSON text, as the server gets it (so a `__proto__` key is an own key).
      let text = JSON.stringify(base);
      for (const change of changes) {
        const e = JSON.parse(text) as Record<string, unknown>;
        if ('drop' in change) delete e[change.drop];
        const json = JSON.stringify(e);
        text =
          'set' in change
            ? `${json.slice(0, -1)}${json.length > 2 ? ',' : ''}${JSON.stringify(change.set)}:${JSON.stringify(change.to)}}`
            : json;
      }
      return JSON.parse(text) as unknown;
    });

  it('accepts exactly what requestEnvelopeSchema accepts: every field at every edge', () => {
    for (const base of signedRequests) {
      expect(isRequestEnvelope(base)).toBe(true);
      for (const key of [...keys, 'extra']) {
        const { [key]: _, ...without } = base;
        expect(isRequestEnvelope(without), `without ${key}`).toBe(accepts(without));
        for (const value of edges) {
          const e = { ...base, [key]: value };
          expect(isRequestEnvelope(e), `${key} = ${JSON.stringify(value)}`).toBe(accepts(e));
        }
      }
    }
  });

  it('accepts exactly what requestEnvelopeSchema accepts: random changes', () => {
    fc.assert(
      fc.property(mutated, (e) => {
        expect(isRequestEnvelope(e)).toBe(accepts(e));
      }),
      { numRuns: 5000 },
    );
    for (const other of [null, [], 'x', 1, Object.create(null)]) {
      expect(isRequestEnvelope(other)).toBe(false);
    }
  });
});

describe('responseEnvelopeSchema (DESIGN 1.2)', () => {
  const acceptsResponse = (value: unknown) => responseEnvelopeSchema.safeParse(value).success;

  it('accepts every signed response vector', () => {
    for (const envelope of signedResponses) expect(acceptsResponse(envelope)).toBe(true);
  });

  it('is strict and pins v', () => {
    expect(acceptsResponse({ ...RESPONSE, extra: 1 })).toBe(false);
    expect(acceptsResponse({ ...RESPONSE, v: 'mcp/0.2' })).toBe(false);
    expect(PROTOCOL_VERSION).toBe('mcp/0.1');
  });

  it('result and error are always present (possibly null)', () => {
    for (const field of ['result', 'error']) {
      const { [field]: _removed, ...rest } = RESPONSE;
      expect(acceptsResponse(rest), field).toBe(false);
      expect(acceptsResponse({ ...RESPONSE, [field]: null }), field).toBe(true);
    }
    expect(acceptsResponse({ ...RESPONSE, result: [] })).toBe(false);
    expect(acceptsResponse({ ...RESPONSE, error: { code: 'X', message: 'm', extra: 1 } })).toBe(
      false,
    );
    expect(acceptsResponse({ ...RESPONSE, error: { code: 'X', message: 'm', details: [1] } })).toBe(
      true,
    );
  });

  it('status is one of the seven statuses', () => {
    expect([...RESPONSE_STATUSES]).toEqual([
      'ok',
      'accepted',
      'queued',
      'running',
      'done',
      'error',
      'cancelled',
    ]);
    for (const status of RESPONSE_STATUSES) {
      expect(acceptsResponse({ ...RESPONSE, status }), status).toBe(true);
    }
    expect(acceptsResponse({ ...RESPONSE, status: 'failed' })).toBe(false);
  });

  it('signature must be 64 lowercase hex characters', () => {
    expect(acceptsResponse({ ...RESPONSE, signature: RESPONSE.signature.toUpperCase() })).toBe(
      false,
    );
    expect(acceptsResponse({ ...RESPONSE, signature: RESPONSE.signature.slice(1) })).toBe(false);
  });
});

describe('newNonce / newRequestId', () => {
  it('newNonce matches NONCE_PATTERN and the request schema', () => {
    for (let i = 0; i < 100; i++) {
      const nonce = newNonce();
      expect(nonce).toMatch(NONCE_PATTERN);
      expect(nonce).toHaveLength(22);
      expect(accepts(request({ nonce }))).toBe(true);
    }
  });

  it('NONCE_PATTERN is anchored at both ends', () => {
    expect(NONCE_PATTERN.test('a'.repeat(16))).toBe(true);
    expect(NONCE_PATTERN.test(`+${'a'.repeat(16)}`)).toBe(false);
    expect(NONCE_PATTERN.test(`${'a'.repeat(16)}+`)).toBe(false);
  });

  it('newNonce is unique over 10 000 calls, across many refills of its random pool', () => {
    const nonces = Array.from({ length: 10_000 }, () => newNonce());
    expect(new Set(nonces).size).toBe(10_000);
    // Every one of the 16 bytes varies (no part of the pool is left unfilled or reused).
    const bytes = nonces.map((nonce) => Buffer.from(nonce, 'base64url'));
    for (let i = 0; i < 16; i++) {
      expect(new Set(bytes.map((b) => b[i])).size).toBeGreaterThan(200);
    }
  });

  it('newRequestId is a valid, unique request_id', () => {
    const ids = new Set(Array.from({ length: 100 }, () => newRequestId()));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(accepts(request({ request_id: id }))).toBe(true);
  });
});

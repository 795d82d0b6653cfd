// The `job` field of a job tool's response (DESIGN 1.2): `{id, seq}`, inside the signed envelope.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize } from './canonical.ts';
import {
  jobRefSchema,
  RESPONSE_STATUSES,
  responseEnvelopeSchema,
  type UnsignedResponseEnvelope,
} from './envelope.ts';
import { sharedFile } from './shared-files.ts';
import { hmacHex, responseSigningInput, signResponse, verify } from './signing.ts';

const SECRET = 'k7Qm2vX9pL4sT8wZ1nB6cR3yH5jD0fGa_signet-demo';
const JOB_ID = '0f8b8f2e-3c1d-4b7a-9e6f-2a1b3c4d5e6f';

const POLL: UnsignedResponseEnvelope = {
  v: 'mcp/0.1',
  request_id: 'r-1',
  ts_ms: 1763900000000,
  ok: true,
  server_id: 'mcp-server-001',
  nonce: 'Yw9vQ2xVbH1sZ0NrTmF3cQ',
  status: 'running',
  result: { job_id: JOB_ID, progress: { current: 1, total: 2 } },
  error: null,
  job: { id: JOB_ID, seq: 2 },
};

describe('jobRefSchema', () => {
  it('is {id, seq}: a job id and an integer seq from 0 on, nothing else', () => {
    expect(jobRefSchema.safeParse({ id: JOB_ID, seq: 0 }).success).toBe(true);
    expect(jobRefSchema.safeParse({ id: JOB_ID, seq: 41 }).success).toBe(true);
    for (const bad of [
      { id: JOB_ID, seq: -1 },
      { id: JOB_ID, seq: 1.5 },
      { id: JOB_ID, seq: '1' },
      { id: JOB_ID },
      { seq: 1 },
      { id: '', seq: 1 },
      { id: JOB_ID, seq: 1, extra: true },
    ]) {
      expect(jobRefSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('is an optional member of the (strict) response envelope', () => {
    const signed = signResponse(POLL, SECRET).envelope;
    expect(responseEnvelopeSchema.safeParse(signed).success).toBe(true);
    const { job: _job, ...withoutJob } = signed;
    expect(responseEnvelopeSchema.safeParse(withoutJob).success).toBe(true);
    expect(responseEnvelopeSchema.safeParse({ ...signed, job: null }).success).toBe(false);
    expect(
      responseEnvelopeSchema.safeParse({ ...signed, job: { id: JOB_ID, seq: 2, at: 1 } }).success,
    ).toBe(false);
  });
});

describe('responseSigningInput with job', () => {
  it('is the RFC 8785 form: "job" sorts between "error" and "nonce"', () => {
    const input = responseSigningInput(POLL);
    expect(input).toBe(canonicalize(POLL));
    expect(input).toContain(`"error":null,"job":{"id":"${JOB_ID}","seq":2},"nonce":`);
  });

  it('signs job: a changed id or seq no longer verifies', () => {
    const signed = signResponse(POLL, SECRET);
    expect(signed.signature).toBe(hmacHex(SECRET, canonicalize(POLL)));
    expect(verify(signed.envelope, SECRET)).toBe(true);
    expect(JSON.parse(signed.json)).toEqual(signed.envelope);
    const changed = (job: object) => ({ ...signed.envelope, job }) as { signature: string };
    expect(verify(changed({ id: JOB_ID, seq: 3 }), SECRET)).toBe(false);
    expect(verify(changed({ id: 'other', seq: 2 }), SECRET)).toBe(false);
    const { job: _job, ...dropped } = signed.envelope;
    expect(verify(dropped, SECRET)).toBe(false);
  });

  it('matches signingInput on any envelope with a job', () => {
    const envelopes = fc.record({
      v: fc.constant('mcp/0.1'),
      request_id: fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
      ts_ms: fc.integer({ min: 0, max: 1e15 }),
      ok: fc.boolean(),
      server_id: fc.string({ minLength: 1, maxLength: 40 }),
      nonce: fc.stringMatching(/^[A-Za-z0-9_-]{16,40}$/),
      status: fc.constantFrom(...RESPONSE_STATUSES),
      result: fc.constant(null),
      error: fc.constant(null),
      job: fc.record({
        id: fc.string({ unit: 'binary', minLength: 1, maxLength: 128 }),
        seq: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      }),
    });
    fc.assert(
      fc.property(envelopes, (envelope) => {
        expect(responseSigningInput(envelope)).toBe(canonicalize(envelope));
      }),
      { numRuns: 300 },
    );
  });

  it('leaves the signatures of envelopes without job byte for byte as they were', () => {
    const vectors = JSON.parse(
      readFileSync(sharedFile('vectors/signing/envelopes.json'), 'utf8'),
    ) as {
      secret: string;
      responses: Array<{ envelope: Record<string, unknown>; canonical: string; signature: string }>;
    };
    expect(vectors.responses.length).toBeGreaterThan(0);
    for (const { envelope, canonical, signature } of vectors.responses) {
      const again = signResponse(envelope as UnsignedResponseEnvelope, vectors.secret);
      expect(responseSigningInput(envelope as UnsignedResponseEnvelope)).toBe(canonical);
      expect(again.signature).toBe(signature);
    }
  });
});

// What the property-based security suite (security.property.test.ts) expects of an answer: a
// refused forgery (unsigned, at checks 1-3), a signed refusal, and a valid call's right answer,
// signed with the right key (the envelope kit's checks, plus those only this suite can make).
import { PROTOCOL_VERSION, REASON_STATUS, type ResponseEnvelope, verify } from '@signet/protocol';
import {
  type Answered,
  expectAnswer,
  expectRefusal,
  type RequestDraft,
} from '@signet/server/testing';
import { expect } from 'vitest';
import {
  ALL_SIGNERS,
  answerKeyOf,
  type CallSpec,
  census,
  type Outcome,
  SERVER_ID,
  type Signer,
} from './property-server.ts';

export function describeOutcome(o: Outcome): string {
  const text = JSON.stringify(o.json) ?? 'no JSON';
  return `HTTP ${o.status} ${text.length > 400 ? `${text.slice(0, 400)}…` : text}`;
}

/** A 4xx refusal with a reason code of DESIGN 1.5 whose status it is. */
function expect4xx(o: Outcome): void {
  expect(o.status, describeOutcome(o)).toBeGreaterThanOrEqual(400);
  expect(o.status, describeOutcome(o)).toBeLessThan(500);
  expect(o.reason, describeOutcome(o)).toBeDefined();
  expect(REASON_STATUS[o.reason!], describeOutcome(o)).toBe(o.status);
}

/**
 * What a forged, mutated or unauthenticated body must get: a 4xx before the signature is
 * accepted (checks 1-3, or the HTTP layer), and nothing signed.
 */
export function expectForgeryRefused(o: Outcome): void {
  if (o.status >= 200 && o.status < 300) census.forgeriesAccepted++;
  expect4xx(o);
  expect(o.check, describeOutcome(o)).toBeGreaterThanOrEqual(0);
  expect(o.check, describeOutcome(o)).toBeLessThanOrEqual(3);
  expect(o.envelope, describeOutcome(o)).toBeUndefined();
}

/** Beyond the kit's checks: signed by no other signer's key, by this server, just now. */
function expectOnlyFrom(envelope: ResponseEnvelope, signer: Signer): void {
  for (const other of ALL_SIGNERS) {
    if (other.secret !== signer.secret) expect(verify(envelope, other.secret)).toBe(false);
  }
  // An Ed25519 client's answers are signed by the server key they name; an HMAC client's by
  // its own key, naming none.
  if (signer.answerKey) {
    expect(envelope.kid).toBe('s1');
    expect(envelope.signature).toHaveLength(128);
  } else {
    expect(envelope.kid).toBeUndefined();
    expect(envelope.signature).toHaveLength(64);
  }
  expect(envelope.server_id).toBe(SERVER_ID);
  expect(Math.abs(envelope.ts_ms - Date.now())).toBeLessThan(60_000);
}

/** A refusal at checks 4-8 (or a tool's own error at 9) carries a signed error envelope. */
export function expectSignedRefusal(
  o: Outcome,
  signer: Signer,
  draft: Record<string, unknown>,
): void {
  expect4xx(o);
  const request = draft as Answered;
  expectRefusal(o, o.status, o.reason!, {
    secret: answerKeyOf(signer),
    request,
    serverId: SERVER_ID,
  });
  expectOnlyFrom(o.envelope as ResponseEnvelope, signer);
}

/** What a valid call of `spec` must get: the tool's right answer, signed with the right key. */
export function expectRan(spec: CallSpec, draft: Record<string, unknown>, o: Outcome): void {
  expect(o.check, describeOutcome(o)).toBe(9);
  if (spec.signer.answerKey) census.ed25519Ran++;
  if (spec.tool === 'poll_job' || spec.tool === 'cancel_job') {
    // A random job id: the tool ran and found no such job (a signed 404).
    expect(o.status, describeOutcome(o)).toBe(404);
    expect(o.reason).toBe('JOB_NOT_FOUND');
    expectSignedRefusal(o, spec.signer, draft);
    return;
  }
  const env = expectAnswer(o, draft as RequestDraft, { secret: answerKeyOf(spec.signer) });
  expectOnlyFrom(env, spec.signer);
  expect(env.status).toBe('ok');
  if (spec.tool === 'server_identity') {
    expect(env.result).toMatchObject({
      server_id: SERVER_ID,
      capabilities: { protocol: PROTOCOL_VERSION },
    });
  } else {
    // What the server saw is what went over the wire (JSON has no -0).
    const numbers = JSON.parse(JSON.stringify(spec.args.numbers)) as number[];
    let total = 0;
    for (const n of numbers) total += n;
    expect(env.result).toEqual({ count: numbers.length, total });
  }
}

import { randomFillSync, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ReasonCode } from './reasons.ts';

export const PROTOCOL_VERSION = 'mcp/0.1';

export const ID_MAX_LENGTH = 128;
const VERSION_MAX_LENGTH = 32;
/** A signature: HMAC-SHA256 as 64 lowercase hex characters, or Ed25519 as 128. */
export const SIGNATURE_PATTERN = /^(?:[0-9a-f]{64}|[0-9a-f]{128})$/;
/** An HMAC-SHA256 signature: 64 lowercase hex characters. */
export const HMAC_SIGNATURE_PATTERN = /^[0-9a-f]{64}$/;
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;
// (The limits above are shared with `isRequestEnvelope` below, which must accept the same.)
const id = z.string().min(1).max(ID_MAX_LENGTH);
const signature = z.string().regex(SIGNATURE_PATTERN, 'must be 64 or 128 lowercase hex characters');

/** A JSON object (not an array, not null). */
export const jsonObject = z.record(z.string(), z.unknown());

/** DESIGN 1.1. `v` is any string here so that a wrong version is told apart from a bad envelope. */
export const requestEnvelopeSchema = z.strictObject({
  v: z.string().max(VERSION_MAX_LENGTH),
  request_id: id,
  ts_ms: z.int(),
  client_id: id,
  server_id: id,
  tool: id,
  args: jsonObject,
  nonce: z.string().regex(NONCE_PATTERN, 'must be 16-128 characters of [A-Za-z0-9_-]'),
  kid: id.optional(),
  signature,
});
export type RequestEnvelope = z.infer<typeof requestEnvelopeSchema>;

const REQUIRED_KEYS = 9; // every key below but `kid`

function isId(value: unknown): boolean {
  return typeof value === 'string' && value.length >= 1 && value.length <= ID_MAX_LENGTH;
}

/**
 * Exactly what `requestEnvelopeSchema` accepts, checked without zod's generic machinery (which
 * costs more than the rest of check 1 on every call). The server refuses what this does not
 * accept through the schema itself, which explains why; `envelope.test.ts` checks that the two
 * accept the same envelopes.
 */
export function isRequestEnvelope(raw: unknown): raw is RequestEnvelope {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return false;
  const e = raw as Record<string, unknown>;
  let known = 0;
  for (const key of Object.keys(e)) {
    switch (key) {
      case 'v':
      case 'request_id':
      case 'ts_ms':
      case 'client_id':
      case 'server_id':
      case 'tool':
      case 'args':
      case 'nonce':
      case 'signature':
        known++;
        break;
      case 'kid':
        if (!isId(e.kid)) return false;
        break;
      default:
        return false;
    }
  }
  const args = e.args;
  return (
    known === REQUIRED_KEYS &&
    typeof e.v === 'string' &&
    e.v.length <= VERSION_MAX_LENGTH &&
    isId(e.request_id) &&
    Number.isSafeInteger(e.ts_ms) &&
    isId(e.client_id) &&
    isId(e.server_id) &&
    isId(e.tool) &&
    typeof args === 'object' &&
    args !== null &&
    !Array.isArray(args) &&
    Object.getPrototypeOf(args) === Object.prototype &&
    typeof e.nonce === 'string' &&
    NONCE_PATTERN.test(e.nonce) &&
    typeof e.signature === 'string' &&
    SIGNATURE_PATTERN.test(e.signature)
  );
}
export type UnsignedRequestEnvelope = Omit<RequestEnvelope, 'signature'>;

export const RESPONSE_STATUSES = [
  'ok',
  'accepted',
  'queued',
  'running',
  'done',
  'error',
  'cancelled',
] as const;
export type ResponseStatus = (typeof RESPONSE_STATUSES)[number];

export const envelopeErrorSchema = z.strictObject({
  code: z.string(),
  message: z.string(),
  details: z.unknown().optional(),
});
export type EnvelopeError = {
  code: ReasonCode | 'INTERRUPTED';
  message: string;
  details?: unknown;
};

/**
 * DESIGN 1.2: the `job` of a job tool's response: which job it speaks of, and its position in the
 * job's change log (0 when the job is created, one more with every change; the watch cursor).
 */
export const jobRefSchema = z.strictObject({
  id,
  seq: z.int().min(0),
});
export type JobRef = z.infer<typeof jobRefSchema>;

/** DESIGN 1.2. */
export const responseEnvelopeSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  request_id: z.string(),
  ts_ms: z.int(),
  ok: z.boolean(),
  server_id: z.string(),
  nonce: z.string(),
  status: z.enum(RESPONSE_STATUSES),
  result: jsonObject.nullable(),
  error: envelopeErrorSchema.nullable(),
  /** Only on a job tool's response: the job and its change-log position. */
  job: jobRefSchema.optional(),
  /** Which server key signed: only in responses to Ed25519 clients. */
  kid: id.optional(),
  signature,
});
export type ResponseEnvelope = Omit<z.infer<typeof responseEnvelopeSchema>, 'error'> & {
  error: EnvelopeError | null;
};
export type UnsignedResponseEnvelope = Omit<ResponseEnvelope, 'signature'>;

/** The parts of a response envelope that a tool's outcome decides. */
export interface Reply {
  status: ResponseStatus;
  ok: boolean;
  result: Record<string, unknown> | null;
  error: EnvelopeError | null;
  /** Only on a job tool's response (DESIGN 1.2): the job and its change-log position. */
  job?: JobRef;
}

const NONCE_BYTES = 16;
/**
 * Random bytes drawn 256 nonces at a time, each used once: a `randomBytes` call per nonce cost a
 * busy signer more than the HMAC (node's randomUUID pools its entropy the same way).
 */
const noncePool = Buffer.alloc(NONCE_BYTES * 256);
let noncePoolAt = noncePool.length;

/** A fresh single-use nonce: 128 random bits, base64url (22 characters). */
export function newNonce(): string {
  if (noncePoolAt === noncePool.length) {
    randomFillSync(noncePool);
    noncePoolAt = 0;
  }
  const nonce = noncePool.toString('base64url', noncePoolAt, noncePoolAt + NONCE_BYTES);
  noncePoolAt += NONCE_BYTES;
  return nonce;
}

export function newRequestId(): string {
  return randomUUID();
}

/** Who a request is from and to: what every envelope a client sends names. */
export interface RequestParties {
  serverId: string;
  clientId: string;
  /** Which of the client's keys will sign; absent = the server tries each. */
  kid?: string;
}

/** A new request envelope, not yet signed: a fresh nonce, and `request_id` unless given. */
export function unsignedRequest(
  parties: RequestParties,
  tool: string,
  args: Record<string, unknown>,
  opts: { requestId?: string; now: number },
): UnsignedRequestEnvelope {
  return {
    v: PROTOCOL_VERSION,
    request_id: opts.requestId ?? newRequestId(),
    ts_ms: Math.round(opts.now),
    client_id: parties.clientId,
    server_id: parties.serverId,
    tool,
    args,
    nonce: newNonce(),
    ...(parties.kid !== undefined ? { kid: parties.kid } : {}),
  };
}

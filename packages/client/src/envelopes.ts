import type { KeyObject } from 'node:crypto';
import { cancelJob, pollJob, watchJob } from '@signet/contracts';
import {
  ED25519_SIGNATURE_PATTERN,
  ed25519PrivateKey,
  ed25519PublicKey,
  jobReplyProblem,
  type RequestEnvelope,
  type ResponseEnvelope,
  responseEnvelopeSchema,
  sign,
  unsignedRequest,
  verify,
} from '@signet/protocol';
import { SignetResponseError, UnsignedReasonError } from './errors.ts';

/** A client's HMAC-SHA256 key: the same secret signs requests and verifies responses. */
export interface HmacKey {
  kid?: string;
  secret: string;
  alg?: undefined;
}

/** A client's Ed25519 key: `privateKey` is base64 of its 32-byte seed. */
export interface Ed25519Key {
  kid: string;
  alg: 'ed25519';
  privateKey: string;
  secret?: undefined;
}

/** A server's Ed25519 public key (base64 of 32 raw bytes), pinned by its clients. */
export interface ServerPublicKey {
  kid: string;
  publicKey: string;
}

export interface SignetCredentials {
  /** The server this client talks to: requests name it, responses must come from it. */
  serverId: string;
  clientId: string;
  /** The client's key; `kid` is sent so the server need not try each of the client's keys. */
  key: HmacKey | Ed25519Key;
  /**
   * For an Ed25519 key: the server's public keys, pinned. A response must be signed by one of
   * them (named by its `kid`); they are never learnt from the server's answers.
   */
  serverKeys?: readonly ServerPublicKey[];
}

const privateKeys = new Map<string, KeyObject>();
const publicKeys = new Map<string, KeyObject>();

function cached(cache: Map<string, KeyObject>, key: string, make: (k: string) => KeyObject) {
  let object = cache.get(key);
  if (!object) {
    if (cache.size >= 256) cache.clear();
    object = make(key);
    cache.set(key, object);
  }
  return object;
}

/** The key that signs this client's requests. */
function requestKey(key: HmacKey | Ed25519Key): string | KeyObject {
  return key.alg === 'ed25519'
    ? cached(privateKeys, key.privateKey, ed25519PrivateKey)
    : key.secret;
}

/** Throws a TypeError if the credentials cannot be used (an Ed25519 key without server keys). */
export function checkCredentials(credentials: SignetCredentials): void {
  if (credentials.key.alg !== 'ed25519') return;
  if (!credentials.serverKeys || credentials.serverKeys.length === 0) {
    throw new TypeError("an Ed25519 key needs the server's pinned public keys (serverKeys)");
  }
  requestKey(credentials.key);
  for (const k of credentials.serverKeys) cached(publicKeys, k.publicKey, ed25519PublicKey);
}

/** Whether a response envelope is signed as this client's key requires. */
function responseVerifies(credentials: SignetCredentials, envelope: ResponseEnvelope): boolean {
  const { key } = credentials;
  if (key.alg !== 'ed25519') return verify(envelope, key.secret);
  // Only a pinned server key, named by the response, may sign it: never an HMAC signature.
  if (envelope.kid === undefined || !ED25519_SIGNATURE_PATTERN.test(envelope.signature)) {
    return false;
  }
  const pinned = credentials.serverKeys?.find((k) => k.kid === envelope.kid);
  if (!pinned) return false;
  return verify(envelope, cached(publicKeys, pinned.publicKey, ed25519PublicKey));
}

/** Wraps a tool's args into a freshly signed envelope (new nonce, current time). */
export function signRequest(
  credentials: SignetCredentials,
  tool: string,
  args: unknown,
  opts: { requestId?: string; now: number },
): RequestEnvelope {
  const value = args ?? {};
  // Checked, not copied: a copy could drop keys (e.g. an own `__proto__`) that the caller sent.
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${tool}: arguments must be a JSON object`);
  }
  const parties = { ...credentials, kid: credentials.key.kid };
  return sign(
    unsignedRequest(parties, tool, value as Record<string, unknown>, opts),
    requestKey(credentials.key),
  );
}

/** The job-control tools (DESIGN 1.6; their names are fixed): they answer with a job's status. */
const JOB_CONTROL_TOOLS: ReadonlySet<string> = new Set([
  pollJob.name,
  cancelJob.name,
  watchJob.name,
]);

/**
 * Reasons an error may carry unsigned (DESIGN 1.2, 1.4): those of checks 1-3 and of the HTTP
 * layer, where the server has not authenticated the caller, and INTERNAL or STORE_UNAVAILABLE
 * ending a watch stream after its signed start. Every other reason (JOB_NOT_FOUND, STALE_REQUEST,
 * RATE_LIMITED, TOOL_FAILED…) is given only after check 3, so only in a signed refusal.
 */
const UNSIGNED_REASONS: ReadonlySet<string> = new Set([
  'PARSE_ERROR',
  'BAD_ENVELOPE',
  'UNSUPPORTED_VERSION',
  'TOOL_MISMATCH',
  'BAD_SIGNATURE',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNKNOWN_TOOL',
  'METHOD_NOT_ALLOWED',
  'INTERNAL',
  'STORE_UNAVAILABLE',
]);

/** A well-formed envelope, signed as this client's key requires, answering this very request. */
function verifiedEnvelope(
  credentials: SignetCredentials,
  request: RequestEnvelope,
  data: unknown,
): ResponseEnvelope {
  const parsed = responseEnvelopeSchema.safeParse(data);
  if (!parsed.success) {
    throw new SignetResponseError('BAD_RESPONSE_ENVELOPE', 'the response is not a Signet envelope');
  }
  const envelope = parsed.data as ResponseEnvelope;
  let valid = false;
  try {
    valid = responseVerifies(credentials, envelope);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new SignetResponseError(
      'BAD_RESPONSE_SIGNATURE',
      'the response signature does not verify: it may have been tampered with',
    );
  }
  if (
    envelope.request_id !== request.request_id ||
    envelope.nonce !== request.nonce ||
    envelope.server_id !== credentials.serverId
  ) {
    throw new SignetResponseError(
      'RESPONSE_MISMATCH',
      'the response does not answer this request from this server',
    );
  }
  return envelope;
}

/**
 * Why a verified envelope is not a success of `tool` (DESIGN 1.2, 1.7), or `undefined`: a tool
 * answers `ok` (a job start `accepted`) with `ok:true`; job control answers the job's status,
 * `status:"error"` only for a failed job (TOOL_FAILED or INTERRUPTED). A signed refusal, which a
 * man in the middle can earn by replaying the call, is never a result (issue 21, V1).
 */
function successProblem(tool: string, envelope: ResponseEnvelope): string | undefined {
  if (JOB_CONTROL_TOOLS.has(tool)) return jobReplyProblem(envelope);
  if (!envelope.ok && envelope.error !== null) {
    return `a signed ${envelope.error.code} refusal is not a result`;
  }
  if (envelope.ok && envelope.error === null) {
    if (envelope.status === 'ok' || envelope.status === 'accepted') return undefined;
  }
  return `status "${envelope.status}" (ok: ${envelope.ok}) is not an answer of ${tool}`;
}

/**
 * Accepts the envelope of a successful call (`{"result":{"data":…}}`, or a watch event) only if it
 * is well-formed, signed with our key (for an Ed25519 client: with one of the pinned server keys,
 * named by `kid`), answers this very request (request_id and nonce echoed) from the expected
 * server, and is a success of the tool called (`successProblem`).
 */
export function verifyResponse(
  credentials: SignetCredentials,
  request: RequestEnvelope,
  data: unknown,
): ResponseEnvelope {
  const envelope = verifiedEnvelope(credentials, request, data);
  const problem = successProblem(request.tool, envelope);
  if (problem !== undefined) throw new SignetResponseError('BAD_RESPONSE_ENVELOPE', problem);
  return envelope;
}

/**
 * A signed refusal (the `error.data` of a failed call): its envelope must be verified as any
 * response's, be a refusal, and agree with the unsigned `reason` beside it, which is what
 * callers read.
 */
export function verifyRefusal(
  credentials: SignetCredentials,
  request: RequestEnvelope,
  data: { reason?: unknown; envelope?: unknown },
): ResponseEnvelope {
  const envelope = verifiedEnvelope(credentials, request, data.envelope);
  if (
    envelope.ok ||
    envelope.status !== 'error' ||
    envelope.error === null ||
    envelope.error.code !== data.reason
  ) {
    throw new SignetResponseError(
      'BAD_RESPONSE_ENVELOPE',
      'the refusal does not agree with its signed envelope',
    );
  }
  return envelope;
}

/**
 * An error that came without a signed envelope: refused (`UnsignedReasonError`) if it claims a
 * reason that only a signed refusal may carry (issue 21, W7). A missing reason is a transport
 * failure, passed on as it is.
 */
export function checkUnsignedError(data: { reason?: unknown } | undefined): void {
  const reason = data?.reason;
  if (reason === undefined || (typeof reason === 'string' && UNSIGNED_REASONS.has(reason))) return;
  throw new UnsignedReasonError(String(reason));
}

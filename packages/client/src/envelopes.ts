import type { KeyObject } from 'node:crypto';
import {
  ED25519_SIGNATURE_PATTERN,
  ed25519PrivateKey,
  ed25519PublicKey,
  type RequestEnvelope,
  type ResponseEnvelope,
  responseEnvelopeSchema,
  sign,
  unsignedRequest,
  verify,
} from '@signet/protocol';
import { SignetResponseError } from './errors.ts';

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

/**
 * Accepts a response envelope only if it is well-formed, signed with our key (for an Ed25519
 * client: with one of the pinned server keys, named by `kid`), and answers this very request
 * (request_id and nonce echoed) from the expected server.
 */
export function verifyResponse(
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
 * A signed refusal (the `error.data` of a failed call): its envelope must pass `verifyResponse`
 * and agree with the unsigned `reason` beside it, which is what callers read.
 */
export function verifyRefusal(
  credentials: SignetCredentials,
  request: RequestEnvelope,
  data: { reason?: unknown; envelope?: unknown },
): ResponseEnvelope {
  const envelope = verifyResponse(credentials, request, data.envelope);
  if (envelope.ok || envelope.error === null || envelope.error.code !== data.reason) {
    throw new SignetResponseError(
      'BAD_RESPONSE_ENVELOPE',
      'the refusal does not agree with its signed envelope',
    );
  }
  return envelope;
}

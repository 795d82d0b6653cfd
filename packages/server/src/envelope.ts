import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  assertCanonicalizable,
  type CanonicalResult,
  canonicalize,
  ED25519_SIGNATURE_PATTERN,
  ed25519Verifies,
  findSigningKey,
  isRequestEnvelope,
  NotCanonicalizableError,
  PROTOCOL_VERSION,
  type Reply,
  type RequestEnvelope,
  requestEnvelopeSchema,
  requestSigningInput,
  type SharedSignedResponse,
  type SignedResponse,
  signResponse,
  signResponseSharing,
  type UnsignedResponseEnvelope,
} from '@signet/protocol';
import type { z } from 'zod';
import { SignetError } from './errors.ts';
import type { ClientKey, Keyring, KeyringClient, ServerKey } from './keyring.ts';
import type { SignetServices } from './services.ts';

/** An authenticated call, as the tool behind the envelope checks sees it. */
export class VerifiedCall {
  constructor(
    readonly envelope: RequestEnvelope,
    readonly client: KeyringClient,
    readonly key: ClientKey,
    readonly serverId: string,
    private readonly now: () => number,
    /** The server key that answers an Ed25519 client (the keyring's signing key). */
    private readonly serverKey?: ServerKey,
    /** The keyring the call was authenticated with. */
    private readonly keyring?: Keyring,
  ) {}

  /**
   * Signs a response to this call: an HMAC client's with the key that verified the call, an
   * Ed25519 client's with the server's signing key, named in `kid` (DESIGN 1.2).
   */
  respond(reply: Reply): SignedResponse {
    const unsigned = this.unsigned(reply);
    if (this.key.alg === 'hmac') return signResponse(unsigned, this.key.secret);
    // (The keyring refuses an Ed25519 client without a server key, so there always is one.)
    const serverKey = this.serverKey!;
    return signResponse({ ...unsigned, kid: serverKey.kid }, serverKey.privateKey);
  }

  /**
   * `respond`, for a reply whose result is already canonical in `result` (shared by the watch
   * streams of one job update): the same signed bytes, the result neither walked nor copied.
   */
  respondSharing(reply: Reply, result: CanonicalResult): SharedSignedResponse {
    const unsigned = this.unsigned(reply);
    if (this.key.alg === 'hmac') return signResponseSharing(unsigned, result, this.key.secret);
    const serverKey = this.serverKey!;
    return signResponseSharing({ ...unsigned, kid: serverKey.kid }, result, serverKey.privateKey);
  }

  /**
   * Whether `keyring` (the one in force now) still trusts this call as when it was authenticated:
   * the same server, the client with the key that signed it, allowed the tool, and for an
   * Ed25519 client the same server key to answer with. A reload may have taken any of them away.
   */
  trustedBy(keyring: Keyring): boolean {
    if (keyring === this.keyring) return true;
    const client = keyring.client(this.client.clientId);
    if (keyring.serverId !== this.serverId || !client) return false;
    if (client.tools && !client.tools.has(this.envelope.tool)) return false;
    const key = this.key;
    if (key.alg === 'hmac') {
      return client.hmacKeys.some((k) => k.kid === key.kid && k.secret.equals(key.secret));
    }
    const serverKey = keyring.signingKey;
    return (
      client.ed25519Keys.some((k) => k.kid === key.kid && k.publicKey.equals(key.publicKey)) &&
      serverKey?.kid === this.serverKey?.kid &&
      serverKey?.publicKey === this.serverKey?.publicKey
    );
  }

  private unsigned(reply: Reply): UnsignedResponseEnvelope {
    return {
      v: PROTOCOL_VERSION,
      request_id: this.envelope.request_id,
      ts_ms: this.now(),
      ok: reply.ok,
      server_id: this.serverId,
      nonce: this.envelope.nonce,
      status: reply.status,
      result: reply.result,
      error: reply.error,
      ...(reply.job === undefined ? {} : { job: reply.job }),
    };
  }
}

/** Unknown clients are checked against this, so they cost what a known client costs. */
const DECOY_KEYS: ReadonlyArray<{ kid?: string; secret: Buffer }> = [
  { secret: Buffer.from('signet-decoy-key-for-unknown-clients-000000') },
];
/**
 * The same for an Ed25519 signature: a real public key (so that a verification under it costs
 * what one under a client's key costs), whose private half was thrown away at start-up.
 */
const DECOY_ED25519: ReadonlyArray<{ kid?: string; publicKey: KeyObject }> = [
  { publicKey: createPublicKey(generateKeyPairSync('ed25519').privateKey) },
];

/**
 * Which of `keys` (if any) made the Ed25519 `signature` over `input`. Every key is tried, so the
 * time taken does not tell which one matched.
 */
function findEd25519Key<K extends { publicKey: KeyObject }>(
  input: string,
  signature: string,
  keys: readonly K[],
): K | undefined {
  let found: K | undefined;
  for (const key of keys) {
    if (ed25519Verifies(key.publicKey, input, signature) && found === undefined) found = key;
  }
  return found;
}

export function issuesOf(error: z.ZodError): Array<{ path: string; message: string }> {
  return error.issues.slice(0, 20).map((issue) => ({
    path: issue.path.map(String).join('.'),
    message: issue.message,
  }));
}

export function describeIssues(error: z.ZodError): string {
  const [first] = issuesOf(error);
  return first ? (first.path ? `${first.path}: ${first.message}` : first.message) : 'invalid';
}

function parseError(error: unknown): unknown {
  return error instanceof NotCanonicalizableError
    ? new SignetError('PARSE_ERROR', error.message)
    : error;
}

/**
 * Checks 1 and 2, and the signing input for check 3. An envelope of the right shape has only
 * `args` left to walk for check 1 (its other members are short strings and an integer, checked
 * again as they are written); anything else is walked whole, then explained by the schema.
 */
function parseEnvelope(raw: unknown): { envelope: RequestEnvelope; signed: string } {
  if (isRequestEnvelope(raw)) {
    try {
      return { envelope: raw, signed: requestSigningInput(raw) };
    } catch (error) {
      throw parseError(error);
    }
  }
  try {
    assertCanonicalizable(raw);
  } catch (error) {
    throw parseError(error);
  }
  const parsed = requestEnvelopeSchema.safeParse(raw);
  if (!parsed.success) {
    throw new SignetError('BAD_ENVELOPE', `bad envelope: ${describeIssues(parsed.error)}`, {
      details: issuesOf(parsed.error),
    });
  }
  // (Unreachable while isRequestEnvelope accepts exactly what the schema does.) The envelope is
  // the parsed body itself, not zod's copy: a copy of `args` could lose an own `__proto__` key
  // (refused by `protoKeyPath` at check 8).
  const envelope = parsed.data;
  envelope.args = (raw as { args: Record<string, unknown> }).args;
  return { envelope, signed: requestSigningInput(envelope) };
}

/** DESIGN 1.4 checks 1 (what is left after parsing) to 3: nothing is signed for the caller yet. */
export function authenticate(raw: unknown, tool: string, services: SignetServices): VerifiedCall {
  const { envelope, signed } = parseEnvelope(raw);
  if (envelope.v !== PROTOCOL_VERSION) {
    throw new SignetError('UNSUPPORTED_VERSION', `protocol version must be "${PROTOCOL_VERSION}"`);
  }
  if (envelope.tool !== tool) {
    throw new SignetError('TOOL_MISMATCH', 'the envelope names another tool than the URL');
  }

  const keyring = services.keyring();
  const client = keyring.client(envelope.client_id);
  // The signature's length says its algorithm; only the client's keys of that algorithm are
  // tried (a decoy when there are none, so that the answer takes as long as for a known client).
  const ofKid = <K extends ClientKey>(keys: readonly K[]) =>
    envelope.kid === undefined ? keys : keys.filter((k) => k.kid === envelope.kid);
  let key: { kid?: string } | undefined;
  if (ED25519_SIGNATURE_PATTERN.test(envelope.signature)) {
    const candidates = client ? ofKid(client.ed25519Keys) : [];
    key = findEd25519Key(
      signed,
      envelope.signature,
      candidates.length > 0 ? candidates : DECOY_ED25519,
    );
  } else {
    const candidates = client ? ofKid(client.hmacKeys) : [];
    key = findSigningKey(
      signed,
      envelope.signature,
      candidates.length > 0 ? candidates : DECOY_KEYS,
    );
  }
  if (!client || !key || key.kid === undefined) {
    throw new SignetError('BAD_SIGNATURE', 'the signature does not verify');
  }
  return new VerifiedCall(
    envelope,
    client,
    key as ClientKey,
    keyring.serverId,
    services.now,
    keyring.signingKey,
    keyring,
  );
}

/**
 * DESIGN 1.4 checks 4 to 7 (and the rate limit), for a caller whose signature verified. `limit`,
 * if given, is the call's per-client cap (watch streams, unfinished jobs), checked after the rate
 * and before the nonce claim: a call it refuses does not spend its nonce either.
 */
export async function authorize(
  call: VerifiedCall,
  services: SignetServices,
  limit?: () => Promise<void> | void,
): Promise<void> {
  const { envelope } = call;
  if (envelope.server_id !== call.serverId) {
    throw new SignetError('WRONG_SERVER', 'this request is addressed to another server');
  }
  const now = services.now();
  if (Math.abs(now - envelope.ts_ms) > services.windowMs) {
    throw new SignetError(
      'STALE_REQUEST',
      `ts_ms is more than ${services.windowMs} ms from the server's clock`,
      { details: { server_ts_ms: now, window_ms: services.windowMs } },
    );
  }
  // Only authenticated callers reach here, so one client cannot spend another's budget; the
  // nonce is not consumed, so the same signed call may be retried after Retry-After.
  const wait = services.rateLimiter?.take(envelope.client_id, now);
  if (wait !== undefined) {
    throw new SignetError('RATE_LIMITED', `too many calls; retry in ${wait} s`, {
      retryAfter: wait,
      details: { retry_after_s: wait },
    });
  }
  if (limit) await limit();
  const fresh = await services.nonces.claim(
    envelope.client_id,
    envelope.nonce,
    envelope.ts_ms + services.windowMs,
  );
  if (!fresh) throw new SignetError('REPLAYED_NONCE', 'this nonce was already used');
  if (call.client.tools && !call.client.tools.has(envelope.tool)) {
    throw new SignetError('TOOL_NOT_ALLOWED', `this client may not call ${envelope.tool}`);
  }
}

/**
 * The path of the first own `__proto__` key in `value`, if any. Such a key is valid JSON, but a
 * schema or an assignment would turn it into a prototype or drop it, so the value a tool saw
 * would not be the value that was signed: calls carrying one are refused (INVALID_ARGS).
 */
export function protoKeyPath(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (typeof item === 'object' && item !== null)
          stack.push([item, `${path}${path ? '.' : ''}${i}`]);
      }
      continue;
    }
    if (Object.hasOwn(v, '__proto__')) return `${path}${path ? '.' : ''}__proto__`;
    for (const key of Object.keys(v)) {
      const item = (v as Record<string, unknown>)[key];
      if (typeof item === 'object' && item !== null)
        stack.push([item, `${path}${path ? '.' : ''}${key}`]);
    }
  }
  return undefined;
}

/** Stable identity of a job's arguments, for idempotent starts. */
export function argsHash(args: Record<string, unknown>): string {
  return createHash('sha256').update(canonicalize(args)).digest('base64url');
}

/** A reply's error envelope for a refusal after authentication. */
export function errorReply(error: SignetError): Reply {
  return {
    status: 'error',
    ok: false,
    result: null,
    error: {
      code: error.reason,
      message: error.message,
      ...(error.details !== undefined ? { details: error.details } : {}),
    },
  };
}

import { createHmac, hash, KeyObject, timingSafeEqual } from 'node:crypto';
import { canonicalJson, jcsNumber, jcsString, MAX_DEPTH } from './canonical.ts';
import { ed25519Hex, ed25519Verifies } from './ed25519.ts';
import {
  HMAC_SIGNATURE_PATTERN,
  type ResponseEnvelope,
  type UnsignedRequestEnvelope,
  type UnsignedResponseEnvelope,
} from './envelope.ts';

/** Secrets shorter than this are refused when a keyring is loaded. */
export const MIN_SECRET_LENGTH = 32;

/** An HMAC key: the UTF-8 bytes of its secret string (DESIGN 1.3). */
export type SigningKey = string | Buffer;

/**
 * Any key an envelope is signed or verified with: an HMAC key, or an Ed25519 `KeyObject` (a
 * private key signs, a public key verifies; see `ed25519PrivateKey` / `ed25519PublicKey`).
 */
export type EnvelopeKey = SigningKey | KeyObject;

function signatureOf(key: EnvelopeKey, input: string): string {
  return key instanceof KeyObject ? ed25519Hex(key, input) : hmacHex(key, input);
}

/** The bytes that get signed: the canonical form of the envelope without its `signature`. */
export function signingInput(envelope: object): string {
  const { signature: _ignored, ...unsigned } = envelope as Record<string, unknown>;
  return canonicalJson(unsigned);
}

/** A key's HMAC pads (RFC 2104), and room for the outer hash's input. */
interface HmacPads {
  inner: Buffer;
  /** The outer pad, followed by 32 bytes for the inner hash. */
  outer: Buffer;
}

const BLOCK = 64; // SHA-256's block size
const padsByBuffer = new WeakMap<Buffer, HmacPads>();
const padsByString = new Map<string, HmacPads>();

function padsOf(key: SigningKey): HmacPads {
  let pads = typeof key === 'string' ? padsByString.get(key) : padsByBuffer.get(key);
  if (pads) return pads;
  let k = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (k.length > BLOCK) k = hash('sha256', k, 'buffer');
  pads = { inner: Buffer.alloc(BLOCK, 0x36), outer: Buffer.alloc(BLOCK + 32, 0x5c) };
  for (let i = 0; i < k.length; i++) {
    pads.inner[i]! ^= k[i]!;
    pads.outer[i]! ^= k[i]!;
  }
  if (typeof key === 'string') {
    if (padsByString.size >= 256) padsByString.clear();
    padsByString.set(key, pads);
  } else {
    padsByBuffer.set(key, pads);
  }
  return pads;
}

/**
 * HMAC-SHA256 of the UTF-8 bytes of `data` (RFC 2104, from two one-shot SHA-256 calls with the
 * key's pads computed once), as lowercase hex. Node's createHmac gives the same bytes, but builds
 * an OpenSSL context per call, which costs more than both hashes; this runs twice on every call
 * a server answers. (`envelope-signing.test.ts` checks it against createHmac.)
 */
export function hmacHex(key: SigningKey, data: string): string {
  const pads = padsOf(key);
  // The inner hash's input (pad, then the data) is written into one reused buffer: a buffer per
  // call would be native memory that only a full garbage collection gives back, and a server
  // under load then holds tens of MB of them. (A JS thread runs one hash at a time.)
  const room = BLOCK + data.length * 3; // UTF-8 takes at most 3 bytes per UTF-16 unit
  const input = room <= SCRATCH_BYTES ? scratch : Buffer.allocUnsafeSlow(room);
  pads.inner.copy(input, 0);
  const length = BLOCK + input.write(data, BLOCK, 'utf8');
  // (Digests as strings: a Buffer result would be a fresh native allocation each time.)
  pads.outer.write(hash('sha256', input.subarray(0, length), 'binary'), BLOCK, 'latin1');
  return hash('sha256', pads.outer, 'hex');
}

const SCRATCH_BYTES = 64 * 1024;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);

/** Returns the envelope with its `signature` set (any previous signature is ignored). */
export function sign<T extends object>(envelope: T, key: EnvelopeKey): T & { signature: string } {
  return { ...envelope, signature: signatureOf(key, signingInput(envelope)) };
}

/** Constant-time comparison of two lowercase-hex HMAC-SHA256 signatures. */
export function signaturesEqual(expected: string, actual: string): boolean {
  if (!HMAC_SIGNATURE_PATTERN.test(actual) || !HMAC_SIGNATURE_PATTERN.test(expected)) return false;
  return timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(actual, 'hex'));
}

/**
 * Which of `keys` (if any) produced `signature` over `input` (from `signingInput`). Every key is
 * tried, so the time taken does not tell which one matched.
 */
export function findSigningKey<K extends { secret: SigningKey }>(
  input: string,
  signature: string,
  keys: readonly K[],
): K | undefined {
  if (!HMAC_SIGNATURE_PATTERN.test(signature)) return undefined;
  // (Decoded into two reused buffers, as hmacHex's input is: no native allocation per call.)
  givenBytes.write(signature, 'hex');
  let found: K | undefined;
  for (const key of keys) {
    expectedBytes.write(hmacHex(key.secret, input), 'hex');
    if (timingSafeEqual(expectedBytes, givenBytes) && found === undefined) found = key;
  }
  return found;
}

const givenBytes = Buffer.alloc(32);
const expectedBytes = Buffer.alloc(32);

/** Whether `envelope` is signed by `key` (an HMAC key, or an Ed25519 public `KeyObject`). */
export function verify(envelope: { signature: string }, key: EnvelopeKey): boolean {
  if (key instanceof KeyObject) {
    return ed25519Verifies(key, signingInput(envelope), envelope.signature);
  }
  return signaturesEqual(hmacHex(key, signingInput(envelope)), envelope.signature);
}

/**
 * `signingInput` of a request envelope that `requestEnvelopeSchema` accepted, without walking
 * its fixed fields generically: the schema fixes which members exist, so their order is known
 * and only `args` needs the canonicalizer (one level down, so one level less deep). Throws
 * `NotCanonicalizableError` as `signingInput` would. The request path runs this on every call.
 */
export function requestSigningInput(e: UnsignedRequestEnvelope): string {
  const kid = e.kid === undefined ? '' : `,"kid":${jcsString(e.kid)}`;
  return `{"args":${canonicalJson(e.args, MAX_DEPTH - 1)},"client_id":${jcsString(e.client_id)}${kid},"nonce":${jcsString(e.nonce)},"request_id":${jcsString(e.request_id)},"server_id":${jcsString(e.server_id)},"tool":${jcsString(e.tool)},"ts_ms":${jcsNumber(e.ts_ms)},"v":${jcsString(e.v)}}`;
}

/** `signingInput` of a response envelope, the same way as `requestSigningInput`. */
export function responseSigningInput(e: UnsignedResponseEnvelope): string {
  const [head, tail] = responseSigningPieces(e);
  return `${head}${e.result === null ? 'null' : canonicalJson(e.result)}${tail}`;
}

/**
 * `responseSigningInput` without its `result`: the text before it (ending `"result":`) and the
 * text after it. RFC 8785 sorts members, and `result` is always between `request_id` and
 * `server_id`, so the input is `head` + the result's canonical text + `tail`.
 */
export function responseSigningPieces(e: UnsignedResponseEnvelope): [head: string, tail: string] {
  const error = e.error === null ? 'null' : canonicalJson(e.error);
  const kid = e.kid === undefined ? '' : `"kid":${jcsString(e.kid)},`;
  // ("job" sorts between "error" and "kid"; its id is a string, its seq an integer.)
  const job =
    e.job === undefined ? '' : `"job":{"id":${jcsString(e.job.id)},"seq":${jcsNumber(e.job.seq)}},`;
  return [
    `{"error":${error},${job}${kid}"nonce":${jcsString(e.nonce)},"ok":${e.ok ? 'true' : 'false'},"request_id":${jcsString(e.request_id)},"result":`,
    `,"server_id":${jcsString(e.server_id)},"status":${jcsString(e.status)},"ts_ms":${jcsNumber(e.ts_ms)},"v":${jcsString(e.v)}}`,
  ];
}

/** A signed response envelope and its JSON text. */
export class SignedResponse {
  constructor(
    private readonly unsigned: UnsignedResponseEnvelope,
    readonly signature: string,
    /** The canonical text with the signature added last: what a server sends. */
    readonly json: string,
  ) {}

  get envelope(): ResponseEnvelope {
    return { ...this.unsigned, signature: this.signature };
  }
}

/**
 * Signs a response envelope; the JSON text comes with it, so nothing is serialized twice. An
 * Ed25519 private key signs for Ed25519 clients: the envelope then names it in `kid`.
 */
export function signResponse(envelope: UnsignedResponseEnvelope, key: EnvelopeKey): SignedResponse {
  const input = responseSigningInput(envelope);
  const signature = signatureOf(key, input);
  return new SignedResponse(
    envelope,
    signature,
    `${input.slice(0, -1)},"signature":"${signature}"}`,
  );
}

/**
 * A response's `result` in canonical form (RFC 8785), as text and as UTF-8 bytes: made once, it
 * can be signed into many envelopes (`signResponseSharing`), e.g. one job update sent on many
 * watch streams, whose envelopes differ only in their own members (request_id, nonce, ts_ms).
 */
export class CanonicalResult {
  readonly bytes: Buffer;

  private constructor(readonly text: string) {
    this.bytes = Buffer.from(text, 'utf8');
  }

  /** Throws `NotCanonicalizableError` as `signingInput` would. */
  static of(result: Record<string, unknown> | null): CanonicalResult {
    return new CanonicalResult(result === null ? 'null' : canonicalJson(result));
  }
}

/**
 * A response signed around a shared `CanonicalResult`: its JSON text (the canonical text with the
 * signature added last, as `SignedResponse.json`) is `head`, then `result`, then `tail`.
 */
export class SharedSignedResponse {
  constructor(
    private readonly unsigned: UnsignedResponseEnvelope,
    readonly signature: string,
    readonly head: string,
    readonly result: CanonicalResult,
    readonly tail: string,
  ) {}

  get envelope(): ResponseEnvelope {
    return { ...this.unsigned, signature: this.signature };
  }

  /** The whole JSON text, in one string (a server writes the pieces instead). */
  get json(): string {
    return `${this.head}${this.result.text}${this.tail}`;
  }
}

/**
 * `signResponse`, for an envelope whose `result` is already canonical in `result` (which must be
 * `CanonicalResult.of(envelope.result)`): the same signature over the same bytes, but the result
 * is neither walked nor copied again. HMAC takes the input in pieces; Ed25519 needs it whole, so
 * it is joined only for the signing.
 */
export function signResponseSharing(
  envelope: UnsignedResponseEnvelope,
  result: CanonicalResult,
  key: EnvelopeKey,
): SharedSignedResponse {
  const [head, tail] = responseSigningPieces(envelope);
  const signature =
    key instanceof KeyObject
      ? ed25519Hex(key, `${head}${result.text}${tail}`)
      : createHmac('sha256', key).update(head).update(result.bytes).update(tail).digest('hex');
  return new SharedSignedResponse(
    envelope,
    signature,
    head,
    result,
    `${tail.slice(0, -1)},"signature":"${signature}"}`,
  );
}

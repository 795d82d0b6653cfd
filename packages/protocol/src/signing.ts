import { createHmac, timingSafeEqual } from 'node:crypto';
import { assertCanonicalizable, canonicalize } from './canonical.ts';

/** Secrets shorter than this are refused when a keyring is loaded. */
export const MIN_SECRET_LENGTH = 32;

/** An HMAC key: the UTF-8 bytes of its secret string (DESIGN 1.3). */
export type SigningKey = string | Buffer;

/** The bytes that get signed: the canonical form of the envelope without its `signature`. */
export function signingInput(envelope: object): string {
  const { signature: _ignored, ...unsigned } = envelope as Record<string, unknown>;
  assertCanonicalizable(unsigned);
  return canonicalize(unsigned);
}

export function hmacHex(key: SigningKey, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

/** Returns the envelope with its `signature` set (any previous signature is ignored). */
export function sign<T extends object>(envelope: T, key: SigningKey): T & { signature: string } {
  return { ...envelope, signature: hmacHex(key, signingInput(envelope)) };
}

const SIGNATURE_HEX = /^[0-9a-f]{64}$/;

/** Constant-time comparison of two lowercase-hex HMAC-SHA256 signatures. */
export function signaturesEqual(expected: string, actual: string): boolean {
  if (!SIGNATURE_HEX.test(actual) || !SIGNATURE_HEX.test(expected)) return false;
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
  let found: K | undefined;
  for (const key of keys) {
    if (signaturesEqual(hmacHex(key.secret, input), signature) && found === undefined) found = key;
  }
  return found;
}

export function verify(envelope: { signature: string }, key: SigningKey): boolean {
  return signaturesEqual(hmacHex(key, signingInput(envelope)), envelope.signature);
}

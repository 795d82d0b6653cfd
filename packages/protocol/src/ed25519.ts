import {
  createPrivateKey,
  createPublicKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';

// Ed25519 keys and signatures (DESIGN 1.3), on node:crypto. A key is written as standard base64
// (RFC 4648 §4) with padding: 44 characters for its 32 raw bytes. Base64url and unpadded input
// are accepted too; everything Signet writes is padded standard base64.

/** The raw length of an Ed25519 public key or private key seed. */
export const ED25519_KEY_BYTES = 32;
/** An Ed25519 signature: 64 bytes, written as 128 lowercase hex characters. */
export const ED25519_SIGNATURE_PATTERN = /^[0-9a-f]{128}$/;

const BASE64 = /^(?:[A-Za-z0-9+/]*|[A-Za-z0-9_-]*)={0,2}$/;

/**
 * The 32 bytes a base64 key stands for (standard or url alphabet, padded or not), or `undefined`
 * for anything else: another length, wrong padding, stray characters or non-zero trailing bits.
 */
export function decodeKey(text: string): Buffer | undefined {
  if (typeof text !== 'string' || !BASE64.test(text)) return undefined;
  const body = text.replace(/=+$/, '');
  const padding = text.length - body.length;
  if (padding > 0 && text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(body.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
  if (bytes.length !== ED25519_KEY_BYTES) return undefined;
  // (Buffer's decoder ignores leftover bits; a canonical encoding has none.)
  if (bytes.toString('base64url') !== body.replaceAll('+', '-').replaceAll('/', '_')) {
    return undefined;
  }
  return bytes;
}

/** A raw key as Signet writes it: standard base64, padded (44 characters for 32 bytes). */
export function encodeKey(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

// DER prefixes of a PKCS #8 Ed25519 private key and an SPKI public key (RFC 8410), before the
// 32 raw bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function raw(key: string | Uint8Array, what: string): Buffer {
  const bytes = typeof key === 'string' ? decodeKey(key) : Buffer.from(key);
  if (bytes?.length !== ED25519_KEY_BYTES) {
    throw new TypeError(`${what} must be base64 of ${ED25519_KEY_BYTES} bytes`);
  }
  return bytes;
}

/** An Ed25519 private key from its 32-byte seed (or the seed's base64). */
export function ed25519PrivateKey(seed: string | Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, raw(seed, 'an Ed25519 private key')]),
    format: 'der',
    type: 'pkcs8',
  });
}

/** An Ed25519 public key from its 32 raw bytes (or their base64). */
export function ed25519PublicKey(publicKey: string | Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, raw(publicKey, 'an Ed25519 public key')]),
    format: 'der',
    type: 'spki',
  });
}

/** The base64 public key of an Ed25519 private key (a KeyObject, or the seed's base64). */
export function ed25519PublicKeyOf(privateKey: KeyObject | string | Uint8Array): string {
  const key =
    typeof privateKey === 'string' || privateKey instanceof Uint8Array
      ? ed25519PrivateKey(privateKey)
      : privateKey;
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return encodeKey(spki.subarray(SPKI_PREFIX.length));
}

/** A new Ed25519 key pair, both halves as Signet writes keys (base64 of 32 raw bytes). */
export function generateEd25519KeyPair(): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return {
    privateKey: encodeKey(pkcs8.subarray(PKCS8_PREFIX.length)),
    publicKey: ed25519PublicKeyOf(privateKey),
  };
}

/** Ed25519 over the UTF-8 bytes of `data`, as 128 lowercase hex characters. */
export function ed25519Hex(privateKey: KeyObject, data: string): string {
  return cryptoSign(null, Buffer.from(data, 'utf8'), privateKey).toString('hex');
}

/** Whether `signature` (128 lowercase hex) is an Ed25519 signature of `data` by `publicKey`. */
export function ed25519Verifies(publicKey: KeyObject, data: string, signature: string): boolean {
  if (!ED25519_SIGNATURE_PATTERN.test(signature)) return false;
  try {
    return cryptoVerify(null, Buffer.from(data, 'utf8'), publicKey, Buffer.from(signature, 'hex'));
  } catch {
    return false;
  }
}

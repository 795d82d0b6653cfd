import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeKey,
  ed25519Hex,
  ed25519PrivateKey,
  ed25519PublicKey,
  ed25519PublicKeyOf,
  ed25519Verifies,
  encodeKey,
  generateEd25519KeyPair,
} from './ed25519.ts';
import { PROTOCOL_VERSION, responseEnvelopeSchema, SIGNATURE_PATTERN } from './envelope.ts';
import { credentialsFileSchema, keyringFileSchema } from './key-files.ts';
import { responseSigningInput, sign, signingInput, signResponse, verify } from './signing.ts';

// RFC 8032 §7.1, test 2: a one-byte message.
const RFC = {
  secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
  public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
  message: '\x72',
  signature:
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
};

describe('Ed25519 keys as base64', () => {
  const bytes = randomBytes(32);
  const padded = bytes.toString('base64');

  it('writes padded standard base64, 44 characters', () => {
    expect(encodeKey(bytes)).toBe(padded);
    expect(padded).toHaveLength(44);
    expect(padded.endsWith('=')).toBe(true);
  });

  it('reads padded, unpadded, url and unpadded url forms alike', () => {
    for (const form of [
      padded,
      padded.replace(/=$/, ''),
      bytes.toString('base64url'),
      `${bytes.toString('base64url')}=`,
    ]) {
      expect(decodeKey(form)?.equals(bytes)).toBe(true);
    }
  });

  it('refuses other lengths, stray characters, mixed alphabets and leftover bits', () => {
    const url = Buffer.from([0xfb, 0xff, ...randomBytes(30)]).toString('base64url');
    expect(url).toMatch(/^-_/);
    const mixed = `+${url.slice(1)}`; // '+' (standard) with '_' (url)
    const last = padded.at(-2)!;
    const leftover = `${padded.slice(0, -2)}${String.fromCharCode(last.charCodeAt(0) ^ 1)}=`;
    for (const bad of [
      randomBytes(31).toString('base64'),
      randomBytes(33).toString('base64'),
      randomBytes(64).toString('base64'),
      '',
      `${padded}=`,
      `${padded.slice(0, 10)} ${padded.slice(11)}`,
      `${padded.slice(0, 43)}==`,
      mixed,
      leftover,
      bytes.toString('hex'),
    ]) {
      expect(decodeKey(bad), bad).toBeUndefined();
    }
    expect(() => ed25519PublicKey(randomBytes(31).toString('base64'))).toThrow(/32 bytes/);
  });

  it('the schemas take every form and refuse a wrong length', () => {
    const { privateKey, publicKey } = generateEd25519KeyPair();
    for (const form of [
      publicKey,
      publicKey.replace(/=$/, ''),
      Buffer.from(publicKey, 'base64').toString('base64url'),
    ]) {
      expect(
        keyringFileSchema.safeParse({
          server_id: 's',
          clients: [{ client_id: 'c', keys: [{ kid: 'e1', alg: 'ed25519', public_key: form }] }],
          server_keys: [{ kid: 's1', alg: 'ed25519', private_key: privateKey }],
        }).success,
      ).toBe(true);
    }
    const short = keyringFileSchema.safeParse({
      server_id: 's',
      clients: [
        { client_id: 'c', keys: [{ kid: 'e1', alg: 'ed25519', public_key: publicKey.slice(4) }] },
      ],
    });
    expect(short.success).toBe(false);
    expect(short.error?.issues[0]?.message).toMatch(/32-byte/);
    // An Ed25519 credentials file needs the server keys it pins.
    const credentials = {
      server_id: 's',
      client_id: 'c',
      key: { kid: 'e1', alg: 'ed25519', private_key: privateKey },
    };
    expect(credentialsFileSchema.safeParse(credentials).success).toBe(false);
    expect(
      credentialsFileSchema.safeParse({
        ...credentials,
        server_keys: [{ kid: 's1', public_key: publicKey }],
      }).success,
    ).toBe(true);
  });
});

describe('Ed25519 signatures', () => {
  it("reproduce RFC 8032's test vector", () => {
    const key = ed25519PrivateKey(Buffer.from(RFC.secret, 'hex'));
    expect(ed25519PublicKeyOf(key)).toBe(Buffer.from(RFC.public, 'hex').toString('base64'));
    expect(ed25519Hex(key, RFC.message)).toBe(RFC.signature);
    const pub = ed25519PublicKey(Buffer.from(RFC.public, 'hex'));
    expect(ed25519Verifies(pub, RFC.message, RFC.signature)).toBe(true);
    expect(ed25519Verifies(pub, 'x', RFC.signature)).toBe(false);
    expect(ed25519Verifies(pub, RFC.message, RFC.signature.toUpperCase())).toBe(false);
    expect(ed25519Verifies(pub, RFC.message, RFC.signature.slice(0, 64))).toBe(false);
  });

  it('sign and verify an envelope over exactly the bytes HMAC signs', () => {
    const pair = generateEd25519KeyPair();
    const envelope = { v: PROTOCOL_VERSION, args: { é: 1.5, list: [1, 'two'] }, nonce: 'n' };
    const signed = sign(envelope, ed25519PrivateKey(pair.privateKey));
    expect(signed.signature).toMatch(/^[0-9a-f]{128}$/);
    expect(SIGNATURE_PATTERN.test(signed.signature)).toBe(true);
    const pub = ed25519PublicKey(pair.publicKey);
    expect(ed25519Verifies(pub, signingInput(envelope), signed.signature)).toBe(true);
    expect(verify(signed, pub)).toBe(true);
    const altered = { ...signed, nonce: 'm' };
    expect(verify(altered, pub)).toBe(false);
    expect(verify(signed, ed25519PublicKey(generateEd25519KeyPair().publicKey))).toBe(false);
    // An HMAC key never accepts a 128-character signature, even one whose half is its HMAC.
    const hmac = sign(envelope, 'x'.repeat(32)).signature;
    expect(verify({ ...envelope, signature: hmac + hmac }, 'x'.repeat(32))).toBe(false);
  });

  it('a response names the server key in kid, which the signature covers', () => {
    const pair = generateEd25519KeyPair();
    const unsigned = {
      v: PROTOCOL_VERSION,
      request_id: 'r',
      ts_ms: 1,
      ok: true,
      server_id: 's',
      nonce: 'n'.repeat(16),
      status: 'ok',
      result: { a: 1 },
      error: null,
      kid: 's1',
    } as const;
    const signed = signResponse(unsigned, ed25519PrivateKey(pair.privateKey));
    expect(responseSigningInput(unsigned)).toBe(signingInput(unsigned));
    const parsed = responseEnvelopeSchema.parse(JSON.parse(signed.json));
    expect(parsed.kid).toBe('s1');
    const pub = ed25519PublicKey(pair.publicKey);
    expect(verify(parsed, pub)).toBe(true);
    const renamed = { ...parsed, kid: 's2' };
    expect(verify(renamed, pub)).toBe(false);
  });
});

import { z } from 'zod';
import { decodeKey } from './ed25519.ts';
import { ID_MAX_LENGTH } from './envelope.ts';
import { MIN_SECRET_LENGTH } from './signing.ts';

// The two files that hold keys (DESIGN 1.8): the server's keyring, which names every client and
// its keys, and a client's credentials, which hold that one client's key and nothing of others.

const id = z.string().min(1).max(ID_MAX_LENGTH);
const secret = z
  .string()
  .min(MIN_SECRET_LENGTH, `secrets must be at least ${MIN_SECRET_LENGTH} characters`);
/** An Ed25519 key: base64 (standard or url, padded or not) of its 32 raw bytes. */
const base64Key = z
  .string()
  .refine((text) => decodeKey(text) !== undefined, 'must be base64 of a 32-byte Ed25519 key');

/** An HMAC-SHA256 client key: the UTF-8 bytes of `secret`. */
const hmacKey = z.strictObject({ kid: id, alg: z.undefined().optional(), secret });
/** An Ed25519 client key: the server holds only its public half. */
const ed25519ClientKey = z.strictObject({
  kid: id,
  alg: z.literal('ed25519'),
  public_key: base64Key,
});

export const keyringFileSchema = z.strictObject({
  server_id: id,
  clients: z
    .array(
      z.strictObject({
        client_id: id,
        tools: z.array(z.string().min(1)).optional(),
        keys: z.array(z.discriminatedUnion('alg', [hmacKey, ed25519ClientKey])).min(1),
      }),
    )
    .min(1),
  /** The server's Ed25519 keys, for Ed25519 clients: the first signs, all are published. */
  server_keys: z
    .array(z.strictObject({ kid: id, alg: z.literal('ed25519'), private_key: base64Key }))
    .optional(),
});
export type KeyringFile = z.infer<typeof keyringFileSchema>;
export type KeyringClientKey = KeyringFile['clients'][number]['keys'][number];

/** A client's credentials file (`SIGNET_CREDENTIALS`, written by `pnpm keygen`, mode 0600). */
export const credentialsFileSchema = z
  .strictObject({
    server_id: id,
    client_id: id,
    key: z.discriminatedUnion('alg', [
      hmacKey,
      z.strictObject({ kid: id, alg: z.literal('ed25519'), private_key: base64Key }),
    ]),
    /** The server's Ed25519 public keys, pinned: only these may sign its responses. */
    server_keys: z
      .array(z.strictObject({ kid: id, public_key: base64Key }))
      .min(1)
      .optional(),
  })
  .refine((file) => file.key.alg !== 'ed25519' || file.server_keys !== undefined, {
    path: ['server_keys'],
    message: "an Ed25519 key needs the server's public keys (server_keys)",
  });
export type CredentialsFile = z.infer<typeof credentialsFileSchema>;
/** The credentials file of a client with an HMAC key. */
export type HmacCredentialsFile = Omit<CredentialsFile, 'key' | 'server_keys'> & {
  key: { kid: string; secret: string };
};

/**
 * The credentials file of one client of a keyring, with its first HMAC key (`undefined` if the
 * client is not there, or has Ed25519 keys only: the keyring holds no private key of a client).
 */
export function credentialsOf(
  keyring: KeyringFile,
  clientId: string,
): HmacCredentialsFile | undefined {
  const client = keyring.clients.find((c) => c.client_id === clientId);
  const key = client?.keys.find((k) => k.alg === undefined);
  if (!client || !key || key.alg !== undefined) return undefined;
  return {
    server_id: keyring.server_id,
    client_id: client.client_id,
    key: { kid: key.kid, secret: key.secret },
  };
}

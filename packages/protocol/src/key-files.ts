import { z } from 'zod';
import { ID_MAX_LENGTH } from './envelope.ts';
import { MIN_SECRET_LENGTH } from './signing.ts';

// The two files that hold keys (DESIGN 1.8): the server's keyring, which names every client and
// its keys, and a client's credentials, which hold that one client's key and nothing of others.

const id = z.string().min(1).max(ID_MAX_LENGTH);
const secret = z
  .string()
  .min(MIN_SECRET_LENGTH, `secrets must be at least ${MIN_SECRET_LENGTH} characters`);

export const keyringFileSchema = z.strictObject({
  server_id: id,
  clients: z
    .array(
      z.strictObject({
        client_id: id,
        tools: z.array(z.string().min(1)).optional(),
        keys: z.array(z.strictObject({ kid: id, secret })).min(1),
      }),
    )
    .min(1),
});
export type KeyringFile = z.infer<typeof keyringFileSchema>;

/** A client's credentials file (`SIGNET_CREDENTIALS`, written by `pnpm keygen`, mode 0600). */
export const credentialsFileSchema = z.strictObject({
  server_id: id,
  client_id: id,
  key: z.strictObject({ kid: id, secret }),
});
export type CredentialsFile = z.infer<typeof credentialsFileSchema>;

/** The credentials file of one client of a keyring, with its first key. */
export function credentialsOf(keyring: KeyringFile, clientId: string): CredentialsFile | undefined {
  const client = keyring.clients.find((c) => c.client_id === clientId);
  if (!client) return undefined;
  const [key] = client.keys;
  return { server_id: keyring.server_id, client_id: client.client_id, key: { ...key! } };
}

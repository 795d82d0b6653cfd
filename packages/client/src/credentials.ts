import { readFileSync } from 'node:fs';
import { credentialsFileSchema, credentialsOf, keyringFileSchema } from '@signet/protocol';
import type { SignetCredentials } from './envelopes.ts';

/** A credentials or keyring file that cannot be used; the message is one line, with no secret. */
export class CredentialsError extends Error {
  override name = 'CredentialsError';
}

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CredentialsError(`cannot read ${what} ${path}: ${code}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CredentialsError(`${what} ${path} is not valid JSON`);
  }
}

interface Issues {
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>;
}

function parsed<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: Issues } },
  json: unknown,
  what: string,
): T {
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new CredentialsError(`${what}: ${issue.path.join('.') || 'file'}: ${issue.message}`);
}

/**
 * A client's credentials file (`pnpm keygen` writes one per client): its key, nothing else but,
 * for an Ed25519 key, the server's pinned public keys.
 */
export function loadCredentials(path: string): SignetCredentials {
  const file = parsed(credentialsFileSchema, readJson(path, 'credentials'), `credentials ${path}`);
  const { key } = file;
  if (key.alg !== 'ed25519') {
    return { serverId: file.server_id, clientId: file.client_id, key: { ...key } };
  }
  return {
    serverId: file.server_id,
    clientId: file.client_id,
    key: { kid: key.kid, alg: 'ed25519', privateKey: key.private_key },
    serverKeys: (file.server_keys ?? []).map((k) => ({ kid: k.kid, publicKey: k.public_key })),
  };
}

/**
 * One client's credentials out of a server's keyring file (`clientId`, or the first client):
 * for development, where the agent runs beside the server.
 */
export function credentialsFromKeyring(path: string, clientId?: string): SignetCredentials {
  const keyring = parsed(keyringFileSchema, readJson(path, 'keyring'), `keyring ${path}`);
  const id = clientId ?? keyring.clients[0]!.client_id;
  const file = credentialsOf(keyring, id);
  if (!file) {
    throw new CredentialsError(
      keyring.clients.some((c) => c.client_id === id)
        ? `client "${id}" has only Ed25519 keys, whose private halves are not in keyring ${path}: use its credentials file`
        : `no client "${clientId}" in keyring ${path}`,
    );
  }
  return { serverId: file.server_id, clientId: file.client_id, key: { ...file.key } };
}

/**
 * The credentials an agent or bridge process is given: `SIGNET_CREDENTIALS` (a credentials
 * file), or else `SIGNET_KEYRING` (default `.signet/keyring.json`) and `SIGNET_CLIENT_ID`.
 */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): SignetCredentials {
  if (env.SIGNET_CREDENTIALS) return loadCredentials(env.SIGNET_CREDENTIALS);
  return credentialsFromKeyring(
    env.SIGNET_KEYRING || '.signet/keyring.json',
    env.SIGNET_CLIENT_ID || undefined,
  );
}

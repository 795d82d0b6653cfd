import { type KeyObject, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  ed25519PrivateKey,
  ed25519PublicKey,
  ed25519PublicKeyOf,
  type KeyringFile,
  keyringFileSchema,
} from '@signet/protocol';

export { type KeyringFile, keyringFileSchema };

/** A client's HMAC-SHA256 key. */
export interface HmacClientKey {
  kid: string;
  alg: 'hmac';
  /** UTF-8 bytes of the secret: the HMAC key. */
  secret: Buffer;
}

/** A client's Ed25519 key: the server holds only the public half. */
export interface Ed25519ClientKey {
  kid: string;
  alg: 'ed25519';
  publicKey: KeyObject;
}

export type ClientKey = HmacClientKey | Ed25519ClientKey;

/** One of the server's Ed25519 keys, which sign its answers to Ed25519 clients. */
export interface ServerKey {
  kid: string;
  alg: 'ed25519';
  privateKey: KeyObject;
  /** Base64 of the 32 raw bytes, as `server_identity` publishes it. */
  publicKey: string;
}

export interface KeyringClient {
  clientId: string;
  keys: readonly ClientKey[];
  /** `keys` split by algorithm, once: a request's signature length picks one list. */
  hmacKeys: readonly HmacClientKey[];
  ed25519Keys: readonly Ed25519ClientKey[];
  /** `undefined` = every tool. */
  tools: ReadonlySet<string> | undefined;
}

export class KeyringError extends Error {
  override name = 'KeyringError';
}

/** Who may call this server, with which keys, and which tools. Immutable: reloads build a new one. */
export class Keyring {
  readonly serverId: string;
  /** The server's Ed25519 keys; the first signs. Empty when no client has an Ed25519 key. */
  readonly serverKeys: readonly ServerKey[];
  private readonly clients: Map<string, KeyringClient>;

  constructor(file: KeyringFile) {
    this.serverId = file.server_id;
    this.serverKeys = (file.server_keys ?? []).map((key, i) => {
      if (file.server_keys!.findIndex((k) => k.kid === key.kid) !== i) {
        throw new KeyringError(`two server keys have kid "${key.kid}"`);
      }
      const privateKey = ed25519PrivateKey(key.private_key);
      return {
        kid: key.kid,
        alg: 'ed25519',
        privateKey,
        publicKey: ed25519PublicKeyOf(privateKey),
      };
    });
    this.clients = new Map();
    for (const client of file.clients) {
      if (this.clients.has(client.client_id)) {
        throw new KeyringError(`client "${client.client_id}" is listed twice`);
      }
      const kids = new Set<string>();
      for (const key of client.keys) {
        if (kids.has(key.kid)) {
          throw new KeyringError(`client "${client.client_id}" has two keys with kid "${key.kid}"`);
        }
        kids.add(key.kid);
        if (key.alg === 'ed25519' && this.serverKeys.length === 0) {
          throw new KeyringError(
            `client "${client.client_id}" has an Ed25519 key, but the keyring has no server_keys ` +
              'to sign its answers (add one, e.g. with `pnpm keygen --ed25519`)',
          );
        }
      }
      const keys = client.keys.map(
        (k): ClientKey =>
          k.alg === 'ed25519'
            ? { kid: k.kid, alg: 'ed25519', publicKey: ed25519PublicKey(k.public_key) }
            : { kid: k.kid, alg: 'hmac', secret: Buffer.from(k.secret, 'utf8') },
      );
      this.clients.set(client.client_id, {
        clientId: client.client_id,
        keys,
        hmacKeys: keys.filter((k): k is HmacClientKey => k.alg === 'hmac'),
        ed25519Keys: keys.filter((k): k is Ed25519ClientKey => k.alg === 'ed25519'),
        tools: client.tools && !client.tools.includes('*') ? new Set(client.tools) : undefined,
      });
    }
  }

  client(clientId: string): KeyringClient | undefined {
    return this.clients.get(clientId);
  }

  /** The server key that signs answers to Ed25519 clients (the first listed), if any. */
  get signingKey(): ServerKey | undefined {
    return this.serverKeys[0];
  }

  static parse(json: unknown): Keyring {
    const parsed = keyringFileSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new KeyringError(`${issue.path.join('.') || 'keyring'}: ${issue.message}`);
    }
    return new Keyring(parsed.data);
  }

  static load(path: string): Keyring {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new KeyringError(
        `cannot read keyring ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'} ` +
          '(create one with `pnpm keygen`)',
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new KeyringError(`keyring ${path} is not valid JSON`);
    }
    try {
      return Keyring.parse(json);
    } catch (error) {
      throw new KeyringError(`keyring ${path}: ${(error as Error).message}`);
    }
  }
}

/** A new random secret: 32 random bytes, base64url (43 characters). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A keyring file whose clients all have HMAC keys (what `generateKeyringFile` writes). */
export type HmacKeyringFile = Omit<KeyringFile, 'clients'> & {
  clients: Array<
    Omit<KeyringFile['clients'][number], 'keys'> & { keys: Array<{ kid: string; secret: string }> }
  >;
};

export function generateKeyringFile(opts: {
  serverId: string;
  clientIds: readonly string[];
}): HmacKeyringFile {
  return {
    server_id: opts.serverId,
    clients: opts.clientIds.map((clientId) => ({
      client_id: clientId,
      tools: ['*'],
      keys: [{ kid: 'k1', secret: generateSecret() }],
    })),
  };
}

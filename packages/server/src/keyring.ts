import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type KeyringFile, keyringFileSchema } from '@signet/protocol';

export { type KeyringFile, keyringFileSchema };

export interface ClientKey {
  kid: string;
  /** UTF-8 bytes of the secret: the HMAC key. */
  secret: Buffer;
}

export interface KeyringClient {
  clientId: string;
  keys: readonly ClientKey[];
  /** `undefined` = every tool. */
  tools: ReadonlySet<string> | undefined;
}

export class KeyringError extends Error {
  override name = 'KeyringError';
}

/** Who may call this server, with which keys, and which tools. Immutable: reloads build a new one. */
export class Keyring {
  readonly serverId: string;
  private readonly clients: Map<string, KeyringClient>;

  constructor(file: KeyringFile) {
    this.serverId = file.server_id;
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
      }
      this.clients.set(client.client_id, {
        clientId: client.client_id,
        keys: client.keys.map((k) => ({ kid: k.kid, secret: Buffer.from(k.secret, 'utf8') })),
        tools: client.tools && !client.tools.includes('*') ? new Set(client.tools) : undefined,
      });
    }
  }

  client(clientId: string): KeyringClient | undefined {
    return this.clients.get(clientId);
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

export function generateKeyringFile(opts: {
  serverId: string;
  clientIds: readonly string[];
}): KeyringFile {
  return {
    server_id: opts.serverId,
    clients: opts.clientIds.map((clientId) => ({
      client_id: clientId,
      tools: ['*'],
      keys: [{ kid: 'k1', secret: generateSecret() }],
    })),
  };
}

import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEd25519KeyPair } from '@signet/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CredentialsError,
  credentialsFromEnv,
  credentialsFromKeyring,
  loadCredentials,
} from './credentials.ts';

const dir = mkdtempSync(join(tmpdir(), 'signet-credentials-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const secret = 's'.repeat(40);
function write(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  chmodSync(path, 0o600);
  return path;
}

const credentialsPath = write('c.json', {
  server_id: 'srv',
  client_id: 'agent',
  key: { kid: 'k1', secret },
});
const keyringPath = write('keyring.json', {
  server_id: 'srv',
  clients: [
    { client_id: 'first', keys: [{ kid: 'a', secret }] },
    { client_id: 'second', keys: [{ kid: 'b', secret: 't'.repeat(40) }] },
  ],
});

describe('client credentials', () => {
  it('reads a credentials file', () => {
    expect(loadCredentials(credentialsPath)).toEqual({
      serverId: 'srv',
      clientId: 'agent',
      key: { kid: 'k1', secret },
    });
  });

  it('reads one client out of a keyring: the named one, or the first', () => {
    expect(credentialsFromKeyring(keyringPath).clientId).toBe('first');
    expect(credentialsFromKeyring(keyringPath, 'second').key.kid).toBe('b');
    expect(() => credentialsFromKeyring(keyringPath, 'third')).toThrow(
      new CredentialsError(`no client "third" in keyring ${keyringPath}`),
    );
  });

  it('prefers SIGNET_CREDENTIALS, else SIGNET_KEYRING with SIGNET_CLIENT_ID', () => {
    const env = { SIGNET_KEYRING: keyringPath, SIGNET_CLIENT_ID: 'second' };
    expect(credentialsFromEnv(env).clientId).toBe('second');
    expect(credentialsFromEnv({ ...env, SIGNET_CREDENTIALS: credentialsPath }).clientId).toBe(
      'agent',
    );
  });

  it('refuses a missing, unreadable or malformed file with one line and no secret', () => {
    const bad = [
      [join(dir, 'nope.json'), /cannot read credentials .*nope\.json: ENOENT/],
      [write('text.json', 'not json'), /is not valid JSON/],
      [
        write('short.json', { server_id: 's', client_id: 'c', key: { kid: 'k', secret: 'short' } }),
        /key\.secret: secrets must be at least 32/,
      ],
      [
        write('extra.json', {
          server_id: 's',
          client_id: 'c',
          key: { kid: 'k', secret },
          keyring: 1,
        }),
        /credentials .*extra\.json: file: Unrecognized key/,
      ],
    ] as const;
    for (const [path, message] of bad) {
      const error = (() => {
        try {
          loadCredentials(path);
        } catch (caught) {
          return caught as Error;
        }
      })();
      expect(error).toBeInstanceOf(CredentialsError);
      expect(error?.message).toMatch(message);
      expect(error?.message).not.toContain(secret);
      expect(error?.message.includes('\n')).toBe(false);
    }
  });

  it('reads an Ed25519 credentials file, with the pinned server keys', () => {
    const client = generateEd25519KeyPair();
    const server = generateEd25519KeyPair();
    const path = write('ed.json', {
      server_id: 'srv',
      client_id: 'ed',
      key: { kid: 'e1', alg: 'ed25519', private_key: client.privateKey },
      server_keys: [{ kid: 's1', public_key: server.publicKey }],
    });
    expect(loadCredentials(path)).toEqual({
      serverId: 'srv',
      clientId: 'ed',
      key: { kid: 'e1', alg: 'ed25519', privateKey: client.privateKey },
      serverKeys: [{ kid: 's1', publicKey: server.publicKey }],
    });
    const unpinned = write('ed-unpinned.json', {
      server_id: 'srv',
      client_id: 'ed',
      key: { kid: 'e1', alg: 'ed25519', private_key: client.privateKey },
    });
    expect(() => loadCredentials(unpinned)).toThrow(/server_keys/);
    const short = write('ed-short.json', {
      server_id: 'srv',
      client_id: 'ed',
      key: { kid: 'e1', alg: 'ed25519', private_key: client.privateKey.slice(2) },
      server_keys: [{ kid: 's1', public_key: server.publicKey }],
    });
    expect(() => loadCredentials(short)).toThrow(/key\.private_key: must be base64 of a 32-byte/);
  });

  it('takes no Ed25519-only client out of a keyring (it holds no private key)', () => {
    const server = generateEd25519KeyPair();
    const path = write('ed-keyring.json', {
      server_id: 'srv',
      clients: [
        {
          client_id: 'ed',
          keys: [{ kid: 'e1', alg: 'ed25519', public_key: generateEd25519KeyPair().publicKey }],
        },
      ],
      server_keys: [{ kid: 's1', alg: 'ed25519', private_key: server.privateKey }],
    });
    expect(() => credentialsFromKeyring(path, 'ed')).toThrow(/only Ed25519 keys/);
  });
});

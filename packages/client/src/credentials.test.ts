import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
});

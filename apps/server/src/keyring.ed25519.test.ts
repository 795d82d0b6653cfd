// An Ed25519 client needs a server key to be answered (DESIGN 1.3): a keyring with one but no
// `server_keys` is refused at start-up (one line, by `pnpm serve` too) and at reload.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { generateEd25519KeyPair, type KeyringFile } from '@signet/protocol';
import { generateSecret, Keyring } from '@signet/server';
import { repoRoot } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import {
  capturingLogger,
  cleanUpAfterEachTest,
  keyringOf,
  SERVER_ID,
  startTestApp,
  typedClient,
  type Who,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

const k1: Who = { clientId: 'client-001', kid: 'k1', secret: generateSecret() };
const client = generateEd25519KeyPair();
const withoutServerKey: KeyringFile = {
  server_id: SERVER_ID,
  clients: [
    { client_id: 'client-001', keys: [{ kid: 'k1', secret: k1.secret }] },
    { client_id: 'ed', keys: [{ kid: 'e1', alg: 'ed25519', public_key: client.publicKey }] },
  ],
};
const REASON = /client "ed" has an Ed25519 key, but the keyring has no server_keys/;

describe('a keyring with an Ed25519 client', () => {
  it('is refused without a server key, with one line saying why', () => {
    expect(() => Keyring.parse(withoutServerKey)).toThrow(REASON);
    expect(() => Keyring.parse({ ...withoutServerKey, server_keys: [] })).toThrow(REASON);
    try {
      Keyring.parse(withoutServerKey);
    } catch (error) {
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('is accepted with one, whose public key the keyring publishes; kids are unique', () => {
    const server = generateEd25519KeyPair();
    const keyring = Keyring.parse({
      ...withoutServerKey,
      server_keys: [{ kid: 's1', alg: 'ed25519', private_key: server.privateKey }],
    });
    expect(keyring.serverKeys.map((k) => [k.kid, k.publicKey])).toEqual([['s1', server.publicKey]]);
    expect(keyring.client('ed')?.keys[0]?.alg).toBe('ed25519');
    expect(() =>
      Keyring.parse({
        ...withoutServerKey,
        server_keys: [
          { kid: 's1', alg: 'ed25519', private_key: server.privateKey },
          { kid: 's1', alg: 'ed25519', private_key: generateEd25519KeyPair().privateKey },
        ],
      }),
    ).toThrow(/two server keys have kid "s1"/);
  });

  it('stops the app at start-up', async () => {
    await expect(startTestApp(writeKeyring(withoutServerKey))).rejects.toThrow(REASON);
  });

  it('stops `pnpm serve` with a one-line reason and a non-zero exit', async () => {
    const path = writeKeyring(withoutServerKey);
    const run = promisify(execFile)(
      process.execPath,
      ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/cli.ts', 'serve'],
      {
        cwd: repoRoot,
        timeout: 30_000,
        env: { ...process.env, SIGNET_KEYRING: path, SIGNET_STORE: 'memory:', SIGNET_PORT: '0' },
      },
    );
    const failure = (await run.then(
      () => undefined,
      (error: unknown) => error,
    )) as { code?: number; stderr?: string } | undefined;
    expect(failure?.code).toBe(1);
    const lines = failure!.stderr!.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(REASON);
  });

  it('is refused at reload, and the old keyring stays in force', async () => {
    const path = writeKeyring(keyringOf([k1]));
    const { logger, records } = capturingLogger();
    const app = await startTestApp(path, {}, logger);
    writeFileSync(path, JSON.stringify(withoutServerKey));
    expect(app.reloadKeyring()).toBe(false);
    expect(records.map((r) => String(r.reason)).join('\n')).toMatch(REASON);
    await expect(typedClient(app.url, k1).batch_sum.mutate({ numbers: [1] })).resolves.toEqual({
      count: 1,
      total: 1,
    });
  });
});

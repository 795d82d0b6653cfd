// `pnpm keygen` as a user runs it: a keyring, and a credentials file per client that an agent
// can call with, all readable by their owner only.
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createSignetClient, loadCredentials, signetReason } from '@signet/client';
import { ed25519PublicKeyOf } from '@signet/protocol';
import { eventually, repoRoot, startProcess, WORKER_READY } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import { onFront } from './testing/front.ts';
import {
  cleanUpAfterEachTest,
  type Router,
  rejectionOf,
  startTestApp,
  tempDir,
} from './testing/http.ts';

cleanUpAfterEachTest();

const keygen = (...args: string[]) =>
  promisify(execFile)(
    process.execPath,
    ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/cli.ts', 'keygen', ...args],
    { cwd: repoRoot, timeout: 30_000 },
  );

describe('pnpm keygen', () => {
  it("writes the keyring and each client's credentials file, mode 0600", async () => {
    const dir = tempDir();
    const out = join(dir, 'keyring.json');
    const { stdout } = await keygen('--out', out, '--client', 'alice', '--client', 'bob');
    expect(stdout).toContain(join(dir, 'credentials', 'bob.json'));
    const keyring = JSON.parse(readFileSync(out, 'utf8'));
    for (const path of [
      out,
      ...['alice', 'bob'].map((c) => join(dir, 'credentials', `${c}.json`)),
    ]) {
      expect(statSync(path).mode & 0o777).toBe(0o600);
    }
    const bob = loadCredentials(join(dir, 'credentials', 'bob.json'));
    expect(bob).toEqual({
      serverId: keyring.server_id,
      clientId: 'bob',
      key: keyring.clients[1].keys[0],
    });
    // Alice's file holds nothing of Bob's.
    expect(readFileSync(join(dir, 'credentials', 'alice.json'), 'utf8')).not.toContain(
      bob.key.secret,
    );
  });

  it('gives credentials that a client calls the server with', async () => {
    const dir = tempDir();
    const out = join(dir, 'keyring.json');
    await keygen('--out', out, '--client', 'agent-7');
    const app = await startTestApp(out);
    const credentials = loadCredentials(join(dir, 'credentials', 'agent-7.json'));
    const client = createSignetClient<Router>({ url: app.url, ...credentials });
    await expect(client.batch_sum.mutate({ numbers: [2, 3] })).resolves.toEqual({
      count: 2,
      total: 5,
    });
  });

  it('--ed25519 creates a keyring with the public key only, a server key, and the credentials', async () => {
    const dir = tempDir();
    const out = join(dir, 'keyring.json');
    await keygen('--ed25519', '--out', out, '--client', 'ed-agent');
    const keyring = JSON.parse(readFileSync(out, 'utf8'));
    const credentialsPath = join(dir, 'credentials', 'ed-agent.json');
    for (const path of [out, credentialsPath]) expect(statSync(path).mode & 0o777).toBe(0o600);
    const file = JSON.parse(readFileSync(credentialsPath, 'utf8'));
    expect(file.key).toEqual({ kid: 'e1', alg: 'ed25519', private_key: expect.any(String) });
    expect(file.key.private_key).toHaveLength(44);
    expect(keyring.server_keys).toEqual([
      { kid: 's1', alg: 'ed25519', private_key: expect.any(String) },
    ]);
    expect(keyring.clients).toEqual([
      {
        client_id: 'ed-agent',
        tools: ['*'],
        keys: [{ kid: 'e1', alg: 'ed25519', public_key: ed25519PublicKeyOf(file.key.private_key) }],
      },
    ]);
    expect(file.server_keys).toEqual([
      { kid: 's1', public_key: ed25519PublicKeyOf(keyring.server_keys[0].private_key) },
    ]);
    // The keyring holds no private client key, the credentials no server private key.
    expect(readFileSync(out, 'utf8')).not.toContain(file.key.private_key);
    expect(readFileSync(credentialsPath, 'utf8')).not.toContain(keyring.server_keys[0].private_key);

    const app = await startTestApp(out);
    const client = createSignetClient<Router>({
      url: app.url,
      ...loadCredentials(credentialsPath),
    });
    await expect(client.batch_sum.mutate({ numbers: [2, 3] })).resolves.toEqual({
      count: 2,
      total: 5,
    });
  });

  it('--ed25519 adds a client to an existing keyring, keeping its server key; never twice', async () => {
    const dir = tempDir();
    const out = join(dir, 'keyring.json');
    await keygen('--out', out, '--client', 'hmac-agent');
    await keygen('--ed25519', '--out', out, '--client', 'ed-1');
    const first = JSON.parse(readFileSync(out, 'utf8'));
    await keygen('--ed25519', '--out', out, '--client', 'ed-2');
    const second = JSON.parse(readFileSync(out, 'utf8'));
    expect(second.clients.map((c: { client_id: string }) => c.client_id)).toEqual([
      'hmac-agent',
      'ed-1',
      'ed-2',
    ]);
    expect(second.server_keys).toEqual(first.server_keys);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const failure = (await keygen('--ed25519', '--out', out, '--client', 'ed-1').catch(
      (error: unknown) => error,
    )) as { code?: number; stderr?: string };
    expect(failure.code).toBe(1);
    expect(failure.stderr).toMatch(/client ed-1 is already in/);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(second);

    // Every client works; each Ed25519 client pins the one server key.
    const app = await startTestApp(out);
    for (const id of ['hmac-agent', 'ed-1', 'ed-2']) {
      const credentials = loadCredentials(join(dir, 'credentials', `${id}.json`));
      const client = createSignetClient<Router>({ url: app.url, ...credentials });
      await expect(client.batch_sum.mutate({ numbers: [1] })).resolves.toEqual({
        count: 1,
        total: 1,
      });
    }
    // A credentials file pinning another server key refuses this server's answers.
    const ed2 = join(dir, 'credentials', 'ed-2.json');
    const pinned = JSON.parse(readFileSync(ed2, 'utf8'));
    pinned.server_keys[0].public_key = ed25519PublicKeyOf(pinned.key.private_key);
    writeFileSync(ed2, JSON.stringify(pinned));
    const wrong = createSignetClient<Router>({ url: app.url, ...loadCredentials(ed2) });
    expect(signetReason(await rejectionOf(wrong.batch_sum.mutate({ numbers: [1] })))).toBe(
      'BAD_RESPONSE_SIGNATURE',
    );
  });
});

describe.skipIf(process.platform === 'win32')('key files are 0600 whatever was there (W11)', () => {
  /** A keyring and a credentials file at `dir`, as a user might have left them: mode 0644. */
  function openFiles(dir: string): string[] {
    const out = join(dir, 'keyring.json');
    const credentials = join(dir, 'credentials', 'alice.json');
    mkdirSync(join(dir, 'credentials'));
    for (const path of [out, credentials]) {
      writeFileSync(path, '{}\n', { mode: 0o644 });
      chmodSync(path, 0o644); // (whatever the umask)
    }
    return [out, credentials];
  }

  it('keygen --force over a 0644 keyring and credentials file leaves both 0600', async () => {
    const [out, credentials] = openFiles(tempDir());
    await keygen('--out', out!, '--client', 'alice', '--force');
    for (const path of [out!, credentials!]) expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(out!, 'utf8')).clients[0].client_id).toBe('alice');
  });

  it('keygen --ed25519 --force over a 0644 keyring and credentials file leaves both 0600', async () => {
    const [out, credentials] = openFiles(tempDir());
    await keygen('--ed25519', '--out', out!, '--client', 'alice', '--force');
    for (const path of [out!, credentials!]) expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  /** `pnpm serve` on `keyring` (spawned), until it listens: what it printed. */
  async function serveOutput(keyring: string): Promise<string> {
    const server = await startProcess(
      'node',
      ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/cli.ts', 'serve'],
      onFront({ SIGNET_PORT: '0', SIGNET_STORE: 'memory:', SIGNET_KEYRING: keyring }),
    );
    await server.kill('SIGKILL');
    return server.output();
  }

  it('pnpm serve warns of a keyring other users can read, naming the file and the fix', async () => {
    const out = join(tempDir(), 'keyring.json');
    await keygen('--out', out);
    expect(await serveOutput(out)).not.toMatch(/readable or writable by other users/);
    chmodSync(out, 0o644);
    const output = await serveOutput(out);
    const warning = output.split('\n').find((line) => line.includes('other users'));
    expect(warning, output).toBeDefined();
    const record = JSON.parse(warning!) as { level: number; msg: string; keyring: string };
    expect(record.level).toBe(40); // pino's warn
    expect(record.keyring).toBe(out);
    expect(record.msg).toContain(`chmod 600 ${out}`);
    expect(record.msg).toContain('mode 0644');
  });

  it.skipIf(!process.env.SIGNET_TEST_REDIS_URL)(
    'pnpm worker, which reads the keyring for its audit log, warns the same',
    async () => {
      const dir = tempDir();
      const out = join(dir, 'keyring.json');
      await keygen('--out', out);
      chmodSync(out, 0o640);
      const worker = await startProcess(
        'node',
        ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/cli.ts', 'worker'],
        {
          SIGNET_STORE: process.env.SIGNET_TEST_REDIS_URL,
          SIGNET_NAMESPACE: `keymode${process.pid}`,
          SIGNET_KEYRING: out,
          SIGNET_AUDIT: join(dir, 'audit'),
        },
        30_000,
        WORKER_READY,
      );
      try {
        const warned = () => (worker.output().includes(`chmod 600 ${out}`) ? true : undefined);
        await eventually(async () => warned(), 5_000, 'the warning');
        expect(worker.output()).toContain('mode 0640');
      } finally {
        await worker.kill('SIGKILL');
      }
    },
  );
});

// `pnpm keygen` as a user runs it: a keyring, and a credentials file per client that an agent
// can call with, all readable by their owner only.
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createSignetClient, loadCredentials } from '@signet/client';
import { repoRoot } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import { cleanUpAfterEachTest, type Router, startTestApp, tempDir } from './testing/http.ts';

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
});

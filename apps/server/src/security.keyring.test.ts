// Adversarial tests over real HTTP: key rotation without a restart (DESIGN 1.3). A rewritten
// keyring file takes effect at once, no call with the surviving key fails meanwhile, a bad file
// is refused and the old keyring stays, and a short secret stops the server at start-up.
import { renameSync, writeFileSync } from 'node:fs';
import { signetReason } from '@signet/client';
import { generateSecret } from '@signet/server';
import { eventually } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import {
  capturingLogger,
  cleanUpAfterEachTest,
  expectRefusal,
  keyringOf,
  post,
  SERVER_ID,
  signed,
  startTestApp,
  typedClient,
  type Who,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

/** Replaces a file atomically: a temp file in the same directory, renamed over it. */
function replaceFile(path: string, content: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, content);
  renameSync(temp, path);
}

// ---- 4. key rotation without a restart ----------------------------------------------------------

describe('key rotation and keyring reload', () => {
  const k1: Who = { clientId: 'client-001', kid: 'k1', secret: generateSecret() };
  const k2: Who = { clientId: 'client-001', kid: 'k2', secret: generateSecret() };

  async function outcome(url: string, who: Who): Promise<string> {
    return typedClient(url, who)
      .batch_sum.mutate({ numbers: [1] })
      .then(
        () => 'ok',
        (error: unknown) => signetReason(error) ?? String(error),
      );
  }

  it('a rewritten keyring file takes effect within 2 s, with no restart', async () => {
    const keyringPath = writeKeyring(keyringOf([k1]));
    const app = await startTestApp(keyringPath);
    expect(await outcome(app.url, k1)).toBe('ok');
    expect(await outcome(app.url, k2)).toBe('BAD_SIGNATURE');

    const swappedAt = Date.now();
    replaceFile(keyringPath, JSON.stringify(keyringOf([k2])));
    await eventually(
      async () =>
        (await outcome(app.url, k2)) === 'ok' && (await outcome(app.url, k1)) === 'BAD_SIGNATURE'
          ? true
          : undefined,
      2_000,
      'the new keyring to take effect',
    );
    expect(Date.now() - swappedAt).toBeLessThan(2_000);
    // A raw k1 call is the same 401 as any bad signature: nothing signed.
    const request = signed(k1, 'batch_sum', { numbers: [1] });
    expectRefusal(await post(app.url, 'batch_sum', request), 401, 'BAD_SIGNATURE');
  });

  it('no call signed with the surviving key fails while the old key is removed', async () => {
    const keyringPath = writeKeyring(keyringOf([k1, k2]));
    const app = await startTestApp(keyringPath);
    // A steady stream of k2 calls, with and without kid, from 4 concurrent callers.
    const withKid = typedClient(app.url, k2);
    const withoutKid = typedClient(app.url, k2, { kid: false });
    const failures: unknown[] = [];
    let calls = 0;
    let stop = false;
    const stream = async (client: typeof withKid) => {
      while (!stop) {
        try {
          const n = calls++;
          const sum = await client.batch_sum.mutate({ numbers: [n, 1] });
          if (sum.total !== n + 1) failures.push(sum);
        } catch (error) {
          failures.push(signetReason(error) ?? error);
        }
      }
    };
    const streams = [withKid, withoutKid, withKid, withoutKid].map(stream);
    try {
      await eventually(async () => (calls > 20 ? true : undefined), 5_000, 'calls to flow');
      replaceFile(keyringPath, JSON.stringify(keyringOf([k2])));
      await eventually(
        async () => ((await outcome(app.url, k1)) === 'BAD_SIGNATURE' ? true : undefined),
        2_000,
        'k1 to be refused',
      );
      const removedAt = calls;
      await eventually(async () => (calls > removedAt + 20 ? true : undefined), 5_000, 'more');
    } finally {
      stop = true;
      await Promise.all(streams);
    }
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(40);
  });

  it('a bad keyring file is refused and the old keyring stays in force; reloadKeyring() reloads', async () => {
    const keyringPath = writeKeyring(keyringOf([k1]));
    const { logger, records } = capturingLogger();
    const app = await startTestApp(keyringPath, {}, logger);
    const refusals = () => records.filter((r) => r.msg === 'keyring refused; keeping the old one');

    const shortSecret = 'too-short-secret-31-characters!';
    expect(shortSecret).toHaveLength(31);
    const bad = [
      '{"server_id": "mcp-server-001", "clients": [', // not JSON
      JSON.stringify(keyringOf([{ ...k2, secret: shortSecret }])), // secret too short
      JSON.stringify({ server_id: SERVER_ID, clients: [] }), // no clients
    ];
    for (const content of bad) {
      const before = refusals().length;
      replaceFile(keyringPath, content);
      // The watcher sees the change and refuses it; the old keyring stays.
      await eventually(
        async () => (refusals().length > before ? true : undefined),
        2_000,
        'the watcher to refuse the file',
      );
      expect(app.reloadKeyring()).toBe(false);
      expect(await outcome(app.url, k1)).toBe('ok');
      expect(await outcome(app.url, k2)).toBe('BAD_SIGNATURE');
    }
    // Logs say why, never with the secret.
    expect(JSON.stringify(records)).not.toContain(shortSecret);
    expect(JSON.stringify(records)).not.toContain(k1.secret);

    // A good file: reloadKeyring (what SIGHUP calls) swaps it in at once.
    writeFileSync(keyringPath, JSON.stringify(keyringOf([k2])));
    expect(app.reloadKeyring()).toBe(true);
    expect(await outcome(app.url, k2)).toBe('ok');
    expect(await outcome(app.url, k1)).toBe('BAD_SIGNATURE');
  });

  it('a keyring with a short secret stops the server at start-up with a clear message', async () => {
    const keyringPath = writeKeyring(keyringOf([{ ...k1, secret: 'x'.repeat(31) }]));
    await expect(startTestApp(keyringPath)).rejects.toThrow(/at least 32 characters/);
  });
});

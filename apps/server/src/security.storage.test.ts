// What a job costs its store, over real HTTP against the app as `pnpm serve` starts it (issue 21):
// a job's args and output are stored once, not once per change (V3); an output past the limit
// fails its job instead of being stored and sent (V2, V3); the SQLite files are the owner's only
// (W12).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jobHandle } from '@signet/client';
import { eventually } from '@signet/server/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  alice,
  apps,
  cleanUpAfterEachTest,
  keyringOf,
  startTestApp,
  tempDir,
  typedClient,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

const redisUrl = process.env.SIGNET_TEST_REDIS_URL;
/** The stores under test: memory, and Redis (a namespace of its own) when there is one. */
const stores: Array<[string, () => Record<string, string>]> = [
  ['memory', () => ({ SIGNET_STORE: 'memory:' })],
  ...(redisUrl
    ? [
        [
          'redis',
          () => ({ SIGNET_STORE: redisUrl, SIGNET_NAMESPACE: `storage-${randomUUID()}` }),
        ] as [string, () => Record<string, string>],
      ]
    : []),
];

afterAll(async () => {
  if (!redisUrl) return;
  // The namespaces these tests made (storage-<uuid>), and their BullMQ queues.
  for (const pattern of ['storage-*', 'bull:storage-*']) {
    const { stdout } = await cli('--scan', '--pattern', pattern);
    const keys = stdout.split('\n').filter((key) => key !== '');
    for (let i = 0; i < keys.length; i += 100) await cli('DEL', ...keys.slice(i, i + 100));
  }
});

function cli(...args: string[]) {
  return promisify(execFile)('redis-cli', ['-u', redisUrl!, ...args]);
}

/** The bytes Redis spends on `key` (MEMORY USAGE, all of it sampled). */
async function redisBytes(key: string): Promise<number> {
  const { stdout } = await cli('MEMORY', 'USAGE', key, 'SAMPLES', '0');
  return Number(stdout.trim());
}

/** A start_long_task payload of about 0.8 MB (four strings: one may hold at most 256 Ki). */
function bigPayload(): Record<string, string> {
  return Object.fromEntries(['a', 'b', 'c', 'd'].map((k) => [k, k.repeat(200_000)]));
}

/** The database and its WAL as they are on disk (what a job's writes grow). */
function storeSize(path: string): number {
  return [path, `${path}-wal`]
    .filter((file) => existsSync(file))
    .reduce((sum, file) => sum + statSync(file).size, 0);
}

/** The permission bits of each of the store's files that exist. */
function modes(path: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const suffix of ['', '-wal', '-shm']) {
    const file = `${path}${suffix}`;
    if (existsSync(file)) found[`db${suffix}`] = (statSync(file).mode & 0o777).toString(8);
  }
  return found;
}

describe('a job is stored with its args and output once (V3)', () => {
  it('a job with 0.8 MB of args reporting progress 4 times grows the SQLite files by < 3x its args', async () => {
    const path = join(tempDir(), 'signet.db');
    const app = await startTestApp(writeKeyring(keyringOf([alice])), {
      SIGNET_STORE: `sqlite:${path}`,
    });
    const client = typedClient(app.url, alice);
    // (A first call, so the files exist and the nonce log has its first pages.)
    await client.batch_sum.mutate({ numbers: [1] });
    const before = storeSize(path);

    const payload = bigPayload();
    const argsBytes = JSON.stringify(payload).length;
    const ticket = await client.start_long_task.mutate({ seconds: 3, payload });
    const output = await jobHandle(client, ticket).result({ signal: AbortSignal.timeout(20_000) });
    expect(output).toEqual(payload);

    // The args once, the output (the same size) once, and small rows for 6 changes. Writing
    // the whole record at every change, this was ~10x the args.
    const grown = storeSize(path) - before;
    expect(grown).toBeLessThan(3 * argsBytes);
  });

  it.runIf(redisUrl)(
    'a job with 0.8 MB of args reporting progress 4 times keeps a change log of deltas in Redis',
    async () => {
      const namespace = `storage-${randomUUID()}`;
      const app = await startTestApp(writeKeyring(keyringOf([alice])), {
        SIGNET_STORE: redisUrl!,
        SIGNET_NAMESPACE: namespace,
      });
      const client = typedClient(app.url, alice);
      const payload = bigPayload();
      const argsBytes = JSON.stringify(payload).length;
      const ticket = await client.start_long_task.mutate({ seconds: 3, payload });
      const output = await jobHandle(client, ticket).result({
        signal: AbortSignal.timeout(20_000),
      });
      expect(output).toEqual(payload);

      // The log: 7 small deltas (it held 7 whole records, ~9x the args). The announcements:
      // the output once, in the `done` one (each carried the args too).
      expect(await redisBytes(`${namespace}:job:${ticket.job_id}:events`)).toBeLessThan(20_000);
      expect(await redisBytes(`${namespace}:changes:${namespace}-jobs`)).toBeLessThan(
        1.2 * argsBytes,
      );
    },
  );
});

describe('a job output past SIGNET_MAX_OUTPUT_BYTES fails its job (V2, V3)', () => {
  it.each(stores)('%s: ends the job as error TOOL_FAILED, naming the limit', async (_, store) => {
    const app = await startTestApp(writeKeyring(keyringOf([alice])), {
      ...store(),
      SIGNET_MAX_OUTPUT_BYTES: '2048',
    });
    const client = typedClient(app.url, alice);
    const big = await client.start_long_task.mutate({
      seconds: 1,
      payload: { blob: 'x'.repeat(3_000) },
    });
    const small = await client.start_long_task.mutate({
      seconds: 1,
      payload: { blob: 'x'.repeat(1_000) },
    });
    const ended = async (jobId: string) => {
      const state = await client.poll_job.mutate({ job_id: jobId });
      return state.status === 'queued' || state.status === 'running' ? undefined : state;
    };

    await expect(eventually(() => ended(big.job_id), 10_000, 'the job to end')).resolves.toEqual({
      job_id: big.job_id,
      status: 'error',
      error: { code: 'TOOL_FAILED', message: 'the job output exceeded 2048 bytes' },
    });
    await expect(
      eventually(() => ended(small.job_id), 10_000, 'the job to end'),
    ).resolves.toMatchObject({ status: 'done', output: { blob: 'x'.repeat(1_000) } });
  });
});

describe('the SQLite files are readable by their owner only (W12)', () => {
  it('makes a new or an existing 0644 database, its -wal and -shm files 0600', async () => {
    const path = join(tempDir(), 'signet.db');
    // An existing empty file (SQLite takes it as a new database), readable by all.
    writeFileSync(path, '', { mode: 0o644 });
    chmodSync(path, 0o644);
    const keyring = writeKeyring(keyringOf([alice]));
    const first = await startTestApp(keyring, { SIGNET_STORE: `sqlite:${path}` });
    await typedClient(first.url, alice).batch_sum.mutate({ numbers: [1] });
    expect(modes(path)).toMatchObject({ db: '600', 'db-wal': '600' });
    for (const mode of Object.values(modes(path))) expect(mode).toBe('600');

    // A file an older build left 0644.
    await apps.splice(0).at(0)!.close({ graceMs: 0 });
    chmodSync(path, 0o644);
    const second = await startTestApp(keyring, { SIGNET_STORE: `sqlite:${path}` });
    await typedClient(second.url, alice).batch_sum.mutate({ numbers: [2] });
    expect(modes(path)).toMatchObject({ db: '600', 'db-wal': '600' });
    for (const mode of Object.values(modes(path))) expect(mode).toBe('600');
  });
});

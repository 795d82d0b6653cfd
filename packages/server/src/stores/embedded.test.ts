// The embedded stores as a server opens them: the same Backend as Redis.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { BackendContext } from '../backend.ts';
import { jobDefinitions } from '../handlers.ts';
import { HeldJobs, jobTestHandlers, jobTestTools } from '../testing/job-tools.ts';
import { MemoryStore } from './memory.ts';
import { SqliteStore } from './sqlite.ts';

const ctx: BackendContext = {
  definitions: jobDefinitions(jobTestTools, jobTestHandlers(new HeldJobs())),
  logger: pino({ level: 'silent' }),
  concurrency: undefined,
  retentionMs: undefined,
  now: Date.now,
};
const freshPath = () => join(mkdtempSync(join(tmpdir(), 'signet-embedded-')), 'signet.db');

describe('embedded backends', () => {
  it('SqliteStore takes the file at open, and lets it go at close', async () => {
    const path = freshPath();
    const store = new SqliteStore(path);
    expect(existsSync(path)).toBe(false);
    const running = await store.open(ctx);
    expect(running.description).toBe(`sqlite:${path}`);
    await expect(new SqliteStore(path).open(ctx)).rejects.toThrow(/in use by another/);
    await running.jobs.close();
    await running.close();
    const again = await store.open(ctx);
    await again.jobs.close();
    await again.close();
  });

  it('SqliteStore claims nonces by group commit, durably by the time they are answered', async () => {
    const path = freshPath();
    const first = await new SqliteStore(path).open(ctx);
    const claims = Array.from({ length: 50 }, (_, i) =>
      first.nonces.claim('client-a', `nonce-${i}-padding`, 9e12),
    );
    expect(claims.every((claim) => claim instanceof Promise)).toBe(true);
    expect(await Promise.all(claims)).toEqual(claims.map(() => true));
    await first.jobs.close();
    await first.close();
    const second = await new SqliteStore(path).open(ctx);
    try {
      expect(await second.nonces.claim('client-a', 'nonce-7-padding', 9e12)).toBe(false);
    } finally {
      await second.jobs.close();
      await second.close();
    }
  });

  it('MemoryStore runs jobs in this process, and keeps its state across open and close', async () => {
    const store = new MemoryStore();
    const first = await store.open(ctx);
    const args = { below: 10, steps: 1 };
    const request = { clientId: 'alice', requestId: 'r1', tool: 'count_primes', args };
    const { jobId } = await first.jobs.start({ ...request, argsHash: JSON.stringify(args) });
    expect(await first.nonces.claim('alice', 'nonce-0000000001', 9e12)).toBe(true);
    const updates = await first.jobs.watch('alice', jobId, undefined, AbortSignal.timeout(5_000));
    let last: unknown;
    for await (const update of updates!) last = update.state;
    expect(last).toEqual({
      job_id: jobId,
      status: 'done',
      output: { count: 4 },
      seq: expect.any(Number),
    });
    await first.jobs.close();
    await first.close();
    const second = await store.open(ctx);
    expect(await second.nonces.claim('alice', 'nonce-0000000001', 9e12)).toBe(false);
    expect((await second.jobs.get('alice', jobId))?.status).toBe('done');
    await second.jobs.close();
    await second.close();
  });
});

// A job's change log in Redis keeps deltas, and its announcements carry no args (issue 21, V3):
// a job that reports progress many times costs its args once, not once per report.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { newJobRecord } from '../jobs/record.ts';
import type { JobRecord } from '../stores/types.ts';
import { connected, failFastRedis } from './connection.ts';
import { RedisJobRecords } from './scripts.ts';

const redisUrl = process.env.SIGNET_TEST_REDIS_URL;

describe.skipIf(!redisUrl)('Redis job change log', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function open() {
    const redis = failFastRedis(redisUrl!);
    await connected(redis, redisUrl!);
    const prefix = `signet-test-${randomUUID()}`;
    const records = new RedisJobRecords({
      redis,
      prefix,
      queueName: 'log',
      retentionMs: 60_000,
      now: Date.now,
      written: () => {},
      cancelling: () => {},
    });
    cleanups.push(async () => {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    });
    return { redis, records, prefix };
  }

  /** A job with `argsBytes` of args, started, run with 20 progress reports and done. */
  async function runJob(records: RedisJobRecords, argsBytes: number) {
    const args = { payload: { blob: 'a'.repeat(argsBytes) } };
    const record = newJobRecord(
      randomUUID(),
      { clientId: 'alice', requestId: randomUUID(), tool: 't', args, argsHash: 'h' },
      1_000,
    );
    const claim = JSON.stringify({ jobId: record.id, argsHash: 'h', tool: 't' });
    expect(await records.start(record, claim, JSON.stringify(record))).toBe(1);
    const history: JobRecord[] = [record];
    history.push((await records.update(record.id, { status: 'running', attempts: 1 }))!);
    for (let i = 1; i <= 20; i++) {
      history.push((await records.update(record.id, { progress: { current: i, total: 20 } }))!);
    }
    const output = { blob: 'b'.repeat(argsBytes) };
    history.push((await records.update(record.id, { status: 'done', output }, { finish: true }))!);
    return { record, history, output };
  }

  it('rebuilds every change from its delta, the output only on done', async () => {
    const { records } = await open();
    const { record, history, output } = await runJob(records, 1_000);
    expect(await records.changesFrom(record.id, 0)).toEqual(history);
    const fromTen = await records.changesFrom(record.id, 10);
    expect(fromTen).toEqual(history.slice(10));
    expect(fromTen.map((change) => change.output)).toEqual([
      ...Array.from({ length: fromTen.length - 1 }, () => null),
      output,
    ]);
    expect(await records.changesFrom(randomUUID(), 0)).toEqual([]);
  });

  it('writes the args once: log entries and announcements are small', async () => {
    const { redis, records, prefix } = await open();
    const { record } = await runJob(records, 200_000);
    const entries = await redis.lrange(`${prefix}:job:${record.id}:events`, 0, -1);
    expect(entries).toHaveLength(23);
    for (const entry of entries) expect(entry.length).toBeLessThan(300);

    const announced = await redis.xrange(records.changeStream, '-', '+');
    const sizes = announced.map(([, fields]) => fields[3]!.length);
    expect(sizes).toHaveLength(22);
    // Only the `done` announcement carries the output; none carries the args.
    for (const size of sizes.slice(0, -1)) expect(size).toBeLessThan(1_000);
    expect(sizes.at(-1)).toBeLessThan(200_000 + 1_000);
  });

  it('reads a log that an older build wrote as whole records', async () => {
    const { redis, records, prefix } = await open();
    const { record, history } = await runJob(records, 100);
    const log = `${prefix}:job:${record.id}:events`;
    await redis.del(log);
    await redis.rpush(log, ...history.map((change) => JSON.stringify(change)));
    expect(await records.changesFrom(record.id, 0)).toEqual(history);
  });
});

// The request-path connection: commands sent together in one turn, and after a reconnect.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { connected, failFastRedis } from './connection.ts';

const redisUrl = process.env.SIGNET_TEST_REDIS_URL;

describe.skipIf(!redisUrl)('failFastRedis', () => {
  const clients: Redis[] = [];
  afterEach(() => {
    for (const client of clients.splice(0)) client.disconnect();
  });

  async function open() {
    const redis = failFastRedis(redisUrl!);
    clients.push(redis);
    await connected(redis, redisUrl!);
    return redis;
  }

  /** Sends `count` commands in one turn; resolves to their answers. */
  function burst(redis: Redis, key: string, count: number) {
    return Promise.all(Array.from({ length: count }, () => redis.incr(key)));
  }

  it('answers every command of a turn, in the order sent', async () => {
    const redis = await open();
    const key = `signet-test:${randomUUID()}`;
    const answers = await burst(redis, key, 2_000);
    expect(answers).toEqual(Array.from({ length: 2_000 }, (_, i) => i + 1));
    await redis.del(key);
  });

  it('sends and answers again after Redis drops the connection', async () => {
    const redis = await open();
    const admin = new Redis(redisUrl!);
    clients.push(admin);
    const name = `signet-test-${randomUUID()}`;
    await redis.client('SETNAME', name);
    const reconnected = new Promise((resolve) => redis.once('ready', resolve));
    const list = (await admin.client('LIST')) as string;
    const id = new RegExp(`id=(\\d+) [^\\n]*name=${name}`).exec(list)?.[1];
    expect(id).toBeDefined();
    await admin.client('KILL', 'ID', id!);
    await reconnected;
    const key = `signet-test:${randomUUID()}`;
    expect(await burst(redis, key, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await redis.del(key);
  });
});

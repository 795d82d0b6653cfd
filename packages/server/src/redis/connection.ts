import type * as IORedis from 'ioredis';
import type { Redis, RedisOptions } from 'ioredis';
import { holdForTurn } from '../hold-writes.ts';
import { requirePeer } from '../peers.ts';

// An optional peer dependency, required (not imported) so it is the very module bullmq loads.
const ioredis = requirePeer<typeof IORedis>('ioredis', '@signet/server/redis');

/**
 * A connection for request-path commands: when Redis is unreachable, commands fail at once (no
 * offline queue, no retries), so callers get 503 STORE_UNAVAILABLE instead of hanging.
 * It reconnects by itself in the background.
 */
export function failFastRedis(url: string): Redis {
  const redis = new ioredis.Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
    lazyConnect: false,
  } satisfies RedisOptions);
  coalesceWrites(redis);
  return redis;
}

/**
 * Sends the commands of one event-loop turn to Redis in one write. Under load, the commands of
 * many requests then share one syscall here and one read in Redis, which costs both sides less
 * CPU than a write per command. (ioredis's enableAutoPipelining batches the same way, but builds
 * a pipeline per turn: measured slower. See BENCHMARKS.md.)
 */
function coalesceWrites(redis: Redis): void {
  // A new socket on every (re)connect.
  redis.on('connect', () => {
    const socket = redis.stream;
    const write = socket.write;
    const hold = holdForTurn(socket);
    socket.write = function (this: typeof socket, ...args: Parameters<typeof write>) {
      hold();
      return write.apply(this, args);
    } as typeof write;
  });
}

/**
 * A connection for BullMQ workers and event listeners, which block and must not give up (a
 * worker's blocking reads go on a duplicate BullMQ makes of it).
 */
export function blockingRedis(url: string): Redis {
  const redis = new ioredis.Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
  });
  // BullMQ reports connection errors through its own 'error' events (logged by the engine);
  // without a listener here ioredis also prints "Unhandled error event" on every reconnect try.
  redis.on('error', () => {});
  // A worker's BullMQ commands (take the next job, finish one) come in bursts too.
  coalesceWrites(redis);
  return redis;
}

/** Waits (bounded) until a connection is ready, so start-up fails with a clear reason. */
export async function connected(redis: Redis, url: string, timeoutMs = 5_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`cannot reach Redis at ${redactUrl(url)}`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** A Redis URL without its password, fit for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://…';
  }
}

// One suite that every job engine must pass, so that the engines cannot drift apart.
import { randomUUID } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JobState } from '@signet/protocol';
import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SignetError } from '../errors.ts';
import { type Handlers, jobDefinitions } from '../handlers.ts';
import { connected, failFastRedis } from '../redis/connection.ts';
import { BullJobEngine } from '../redis/job-engine.ts';
import { RedisNonceStore } from '../redis/nonce-store.ts';
import { MemoryStore } from '../stores/memory.ts';
import { SqliteFile } from '../stores/sqlite.ts';
import type { JobStore, LocalStore } from '../stores/types.ts';
import { HeldJobs, jobTestHandlers, jobTestTools } from '../testing/job-tools.ts';
import { LocalJobEngine } from './local-engine.ts';
import type { JobDefinition, JobEngine, JobUpdate } from './types.ts';

const redisUrl = process.env.SIGNET_TEST_REDIS_URL;
if (!redisUrl) console.warn('Redis job engine skipped: set SIGNET_TEST_REDIS_URL to run it');

interface EngineOptions {
  definitions: ReadonlyMap<string, JobDefinition>;
  concurrency?: number;
  retentionMs?: number;
  now?: () => number;
}

/** Where one deployment keeps its jobs, and the engines (its processes) that run on it. */
interface Deployment {
  open(opts: EngineOptions): Promise<JobEngine>;
  /**
   * Stops `engine` as a killed process stops: it writes nothing more, its jobs stay as they
   * are, and what it held (a file, BullMQ's lock on its jobs) is let go.
   */
  kill(engine: JobEngine): Promise<void>;
  /** Closes the engines still open, and lets go of the deployment's state. */
  dispose(): Promise<void>;
}

const logger = pino({ level: 'silent' });

/**
 * `store` until `sever()`, then a store that has nothing and keeps nothing: whatever a killed
 * engine would still do goes nowhere.
 */
function severable(store: JobStore): { view: JobStore; sever(): void } {
  let live = true;
  const view: JobStore = {
    createOrGet: (record) => (live ? store.createOrGet(record) : { record, created: false }),
    get: (id) => (live ? store.get(id) : undefined),
    findByRequest: (clientId, requestId) =>
      live ? store.findByRequest(clientId, requestId) : undefined,
    update: (id, patch, now) => (live ? store.update(id, patch, now) : undefined),
    eventsAfter: (id, afterSeq) => (live ? store.eventsAfter(id, afterSeq) : []),
    listByStatus: (statuses) => (live ? store.listByStatus(statuses) : []),
    deleteFinishedBefore: (cutoff) => (live ? store.deleteFinishedBefore(cutoff) : 0),
  };
  return { view, sever: () => (live = false) };
}

/** The embedded engine, on the store `openStore` opens (again after a kill). */
function embedded(openStore: () => LocalStore): Deployment {
  let store: LocalStore | undefined;
  const engines = new Map<JobEngine, () => void>();
  return {
    async open(opts) {
      store ??= openStore();
      const { view, sever } = severable(store);
      const engine = new LocalJobEngine({ store: view, logger, ...opts });
      engines.set(engine, sever);
      return engine;
    },
    async kill(engine) {
      engines.get(engine)?.();
      engines.delete(engine);
      // Only stops its timers and handlers: what it writes goes nowhere.
      await engine.close({ graceMs: 0 });
      store?.close();
      store = undefined;
    },
    async dispose() {
      for (const engine of engines.keys()) await engine.close({ graceMs: 0 });
      store?.close();
    },
  };
}

/** BullMQ workers on one queue and namespace of the test Redis. */
function onRedis(url: string): Deployment {
  const id = randomUUID();
  const engines = new Map<JobEngine, Redis>();
  return {
    async open(opts) {
      const redis = failFastRedis(url);
      await connected(redis, url);
      const engine = new BullJobEngine({
        url,
        redis,
        logger,
        runHandlers: true,
        queueName: `conformance-${id}`,
        prefix: `signet-test-${id}`,
        lockMs: 2_000,
        ...opts,
      });
      await engine.ready();
      engines.set(engine, redis);
      return engine;
    },
    async kill(engine) {
      const redis = engines.get(engine)!;
      engines.delete(engine);
      const parts = engine as unknown as {
        worker: { bull: Worker; cancels: Redis };
        feed: { close(): Promise<void> };
        queue: { close(): Promise<void> };
      };
      // BullMQ stops renewing the locks of its jobs, so that they are handed out again.
      await parts.worker.bull.close(true);
      await parts.worker.bull.disconnect();
      parts.worker.cancels.disconnect();
      await parts.feed.close();
      await parts.queue.close();
      redis.disconnect();
    },
    async dispose() {
      for (const [engine, redis] of engines) {
        await engine.close({ graceMs: 0 });
        redis.disconnect();
      }
    },
  };
}

const engines: Array<[string, (() => Deployment) | undefined]> = [
  [
    'memory',
    () => {
      const store = new MemoryStore();
      return embedded(() => store);
    },
  ],
  [
    'sqlite',
    () => {
      const path = join(mkdtempSync(join(tmpdir(), 'signet-engine-')), 'db');
      return embedded(() => new SqliteFile(path));
    },
  ],
  ['redis (BullMQ)', redisUrl ? () => onRedis(redisUrl) : undefined],
];

describe.each(engines)('job engine: %s', (_name, factory) => {
  const run = factory ? it : it.skip;
  let held: HeldJobs;
  let deployment: Deployment | undefined;
  let engine: JobEngine;
  let requests = 0;

  beforeEach(() => {
    held = new HeldJobs();
  });

  afterEach(async () => {
    for (const label of held.started) held.release(label);
    await deployment?.dispose();
    deployment = undefined;
  });

  /**
   * An engine on this test's deployment, with the job-test handlers (`handlers` instead, where
   * given; without the tools in `without`).
   */
  async function open(
    opts: Omit<EngineOptions, 'definitions'> & {
      handlers?: Handlers<typeof jobTestTools>;
      without?: string;
    } = {},
  ) {
    const { handlers, without, ...rest } = opts;
    deployment ??= factory!();
    const definitions = jobDefinitions(jobTestTools, handlers ?? jobTestHandlers(held));
    if (without) definitions.delete(without);
    engine = await deployment.open({ definitions, ...rest });
    return engine;
  }

  /** Kills the engine, as if its process died. */
  function kill() {
    return deployment!.kill(engine);
  }

  function start(
    tool: string,
    args: Record<string, unknown>,
    clientId = 'alice',
    requestId?: string,
  ) {
    return engine.start({
      clientId,
      requestId: requestId ?? `request-${++requests}`,
      tool,
      args,
      argsHash: JSON.stringify(args),
    });
  }

  /** Follows a job's watch stream to its end. */
  async function follow(jobId: string, after?: string, clientId = 'alice', ms = 10_000) {
    const updates = await engine.watch(clientId, jobId, after, AbortSignal.timeout(ms));
    const seen: JobUpdate[] = [];
    for await (const update of updates!) seen.push(update);
    return seen;
  }

  run('each change moves the job one place on in its change log (seq)', async () => {
    await open();
    const started = await start('count_primes', { below: 10_000, steps: 5 });
    const { jobId } = started;
    expect(started.seq).toBe(0);
    const all = await follow(jobId, '0');
    // Every event after the cursor, one seq apart, each its own cursor: running, 5 steps, done.
    expect(all.map((u) => u.state.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(all.map((u) => u.id)).toEqual(all.map((u) => String(u.state.seq)));
    expect(all.at(-1)!.state.status).toBe('done');
    // Poll and cancel say where the job is; a finished job does not move on.
    expect((await engine.get('alice', jobId))?.seq).toBe(7);
    expect(await engine.cancel('alice', jobId)).toMatchObject({ status: 'done', seq: 7 });
    // A retry of the start reports where the job is now.
    const retried = await engine.start({
      clientId: 'alice',
      requestId: `request-${requests}`,
      tool: 'count_primes',
      args: { below: 10_000, steps: 5 },
      argsHash: JSON.stringify({ below: 10_000, steps: 5 }),
    });
    expect(retried).toEqual({ jobId, seq: 7 });
    // A watch from no cursor starts at the current state, with its seq.
    expect((await follow(jobId)).map((u) => u.state.seq)).toEqual([7]);
  });

  run('a cancel is one more change, and the watcher sees it after the rest', async () => {
    await open();
    const { jobId } = await start('held', { label: 'c' });
    await held.until(() => held.started.includes('c'));
    const updates = await engine.watch('alice', jobId, undefined, AbortSignal.timeout(10_000));
    const seqs: number[] = [];
    const watched = (async () => {
      for await (const update of updates!) seqs.push(update.state.seq);
    })();
    await expect.poll(() => seqs.length, { timeout: 5_000 }).toBeGreaterThan(0);
    const cancelled = await engine.cancel('alice', jobId);
    expect(cancelled).toMatchObject({ status: 'cancelled', seq: 3 });
    await watched;
    held.release('c');
    expect(seqs.at(-1)).toBe(3);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
  });

  run('runs a job to its output, visible to its owner only', async () => {
    await open();
    const { jobId } = await start('count_primes', { below: 1_000, steps: 4 });
    const seen = await follow(jobId);
    expect(seen.at(-1)!.state).toEqual({
      job_id: jobId,
      status: 'done',
      output: { count: 168 },
      seq: expect.any(Number),
    });
    expect(await engine.get('alice', jobId)).toEqual(seen.at(-1)!.state);
    expect(await engine.get('bob', jobId)).toBeUndefined();
    expect(await engine.cancel('bob', jobId)).toBeUndefined();
    expect(await engine.watch('bob', jobId, undefined, AbortSignal.timeout(1_000))).toBeUndefined();
  });

  run('starts once per (client, request_id); other args under that id are refused', async () => {
    await open();
    const first = await start('held', { label: 'x' }, 'alice', 'same');
    expect(first.seq).toBe(0);
    await held.until(() => held.started.includes('x'));
    // The retry reports the job's current place in its change log (it has run since).
    await expect
      .poll(async () => (await engine.get('alice', first.jobId))?.seq, { timeout: 5_000 })
      .toBe(2); // 1: running, 2: progress 1/2
    expect(await start('held', { label: 'x' }, 'alice', 'same')).toEqual({
      jobId: first.jobId,
      seq: 2,
    });
    const other = await start('held', { label: 'x' }, 'bob', 'same');
    expect(other.jobId).not.toBe(first.jobId);
    const refused = await start('held', { label: 'y' }, 'alice', 'same').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SignetError);
    expect((refused as SignetError).reason).toBe('REQUEST_ID_REUSED');
  });

  /** Admits and starts a held job as the envelope middleware does, under a cap of `max`. */
  async function admitted(label: string, max: number, clientId = 'alice', requestId = label) {
    const admission = await engine.admitStart(clientId, requestId, max);
    try {
      return await engine.start({
        clientId,
        requestId,
        tool: 'held',
        args: { label },
        argsHash: JSON.stringify({ label }),
        admission,
      });
    } finally {
      admission.release();
    }
  }

  /** The refusal `engine.admitStart` gives, or undefined if it admitted. */
  async function refusalOf(clientId: string, requestId: string, max: number) {
    try {
      (await engine.admitStart(clientId, requestId, max)).release();
      return undefined;
    } catch (error) {
      return error as SignetError;
    }
  }

  run(
    'caps unfinished jobs per client: a retry at the cap is answered, others are unaffected',
    async () => {
      await open({ concurrency: 1 });
      const first = await admitted('a1', 2);
      await admitted('a2', 2); // queued behind a1
      const refused = await refusalOf('alice', 'a3', 2);
      expect(refused).toBeInstanceOf(SignetError);
      expect(refused!.reason).toBe('RATE_LIMITED');
      expect(refused!.retryAfter).toBe(1);
      expect(refused!.details).toEqual({ limit: 'unfinished_jobs', max: 2, retry_after_s: 1 });
      // The retry of a start that made its job is answered with that job, even at the cap.
      expect((await admitted('a1', 2)).jobId).toBe(first.jobId);
      expect(await refusalOf('alice', 'a3', 2)).toBeDefined();
      // Bob's jobs are his own.
      await admitted('b1', 2, 'bob');
      await admitted('b2', 2, 'bob');
      // A job that ends, however it ends, makes room.
      await held.until(() => held.started.includes('a1'));
      held.release('a1');
      expect((await follow(first.jobId)).at(-1)!.state.status).toBe('done');
      const a3 = await admitted('a3', 2);
      expect(await refusalOf('alice', 'a4', 2)).toBeDefined();
      expect((await engine.cancel('alice', a3.jobId))?.status).toBe('cancelled');
      expect(await refusalOf('alice', 'a4', 2)).toBeUndefined();
    },
  );

  run('counts admitted starts until released, exactly under concurrent admissions', async () => {
    await open();
    const admissions = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => engine.admitStart('alice', `r${i}`, 3)),
    );
    const kept = admissions.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
    expect(kept).toHaveLength(3);
    for (const a of admissions) {
      if (a.status === 'rejected') expect((a.reason as SignetError).reason).toBe('RATE_LIMITED');
    }
    expect(await refusalOf('bob', 'r0', 3)).toBeUndefined();
    // Given back (twice: a release is idempotent) without a job, a place is free again.
    kept[0]!.release();
    kept[0]!.release();
    const again = await engine.admitStart('alice', 'r10', 3);
    expect(await refusalOf('alice', 'r11', 3)).toBeDefined();
    // A start takes its reservation over: the job counts once, not twice.
    await engine.start({
      clientId: 'alice',
      requestId: 'r10',
      tool: 'held',
      args: { label: 'r10' },
      argsHash: JSON.stringify({ label: 'r10' }),
      admission: again,
    });
    again.release();
    expect(await refusalOf('alice', 'r11', 3)).toBeDefined();
    kept[1]!.release();
    expect(await refusalOf('alice', 'r11', 3)).toBeUndefined();
  });

  run('the count of unfinished jobs outlives a crash; a job cut off by it leaves it', async () => {
    await open({ concurrency: 1 });
    const cutOff = await admitted('c1', 2);
    const queued = await admitted('c2', 2);
    await held.until(() => held.started.includes('c1'));
    await kill();
    await open({ concurrency: 1 });
    // c2 is still to run (c1 too, on Redis, until its lost lock is noticed).
    expect(await refusalOf('alice', 'c3', 1)).toBeDefined();
    await held.until(() => held.started.includes('c2'), 15_000);
    held.release('c2');
    expect((await follow(queued.jobId, undefined, 'alice', 25_000)).at(-1)!.state.status).toBe(
      'done',
    );
    expect((await follow(cutOff.jobId, undefined, 'alice', 25_000)).at(-1)!.state).toMatchObject({
      status: 'error',
      error: { code: 'INTERRUPTED' },
    });
    expect(await refusalOf('alice', 'c3', 1)).toBeUndefined();
  });

  run('shows progress, and cancel reaches the running handler', async () => {
    await open();
    const { jobId } = await start('held', { label: 'h' });
    await held.until(() => held.started.includes('h'));
    await expect
      .poll(() => engine.get('alice', jobId), { timeout: 5_000 })
      .toEqual({
        job_id: jobId,
        status: 'running',
        progress: { current: 1, total: 2, message: 'h halfway' },
        seq: 2,
      });
    expect(await engine.cancel('alice', jobId)).toEqual({
      job_id: jobId,
      status: 'cancelled',
      seq: 3,
    });
    await held.until(() => held.aborted.has('h'));
    held.release('h');
    expect((await engine.get('alice', jobId))?.status).toBe('cancelled');
    expect((await engine.cancel('alice', jobId))?.status).toBe('cancelled');
  });

  run('a job cancelled while queued never runs', async () => {
    await open({ concurrency: 1 });
    await start('held', { label: 'first' });
    const { jobId } = await start('held', { label: 'second' });
    await held.until(() => held.started.includes('first'));
    expect((await engine.cancel('alice', jobId))?.status).toBe('cancelled');
    held.release('first');
    const { jobId: third } = await start('held', { label: 'third' });
    await held.until(() => held.started.includes('third'));
    expect(held.started).toEqual(['first', 'third']);
    held.release('third');
    await follow(third);
  });

  run('watch sends every change in order, and resumes after a cursor', async () => {
    await open();
    const { jobId } = await start('count_primes', { below: 10_000, steps: 5 });
    const all = await follow(jobId, '0');
    const ids = all.map((u) => Number(u.id));
    expect(ids).toEqual(ids.map((_, i) => ids[0]! + i));
    const progress = all.flatMap((u) =>
      'progress' in u.state && u.state.progress ? [u.state.progress.current] : [],
    );
    expect(progress).toEqual([1, 2, 3, 4, 5]);
    expect(all.at(-1)!.state.status).toBe('done');
    const resumed = await follow(jobId, all[2]!.id);
    expect(resumed).toEqual(all.slice(3));
    // No cursor: the current state, which is final.
    expect(await follow(jobId)).toEqual([all.at(-1)]);
  });

  run('a watch that has ended leaves no listener on the signal it was given', async () => {
    await open();
    // One signal for many watches, as an agent that keeps one for its session would pass.
    const signal = new AbortController().signal;
    const watchToEnd = async (jobId: string) => {
      const seen: JobState[] = [];
      for await (const update of (await engine.watch('alice', jobId, undefined, signal))!) {
        seen.push(update.state);
      }
      return seen;
    };
    const { jobId: finished } = await start('held', { label: 'w' });
    await held.until(() => held.started.includes('w'));
    const live = watchToEnd(finished);
    held.release('w');
    expect((await live).at(-1)?.status).toBe('done');
    // Finished before the watch: it ends at its first update.
    for (let i = 0; i < 3; i++) expect(await watchToEnd(finished)).toHaveLength(1);
    // Left by its reader halfway.
    const { jobId: running } = await start('held', { label: 'left' });
    await held.until(() => held.started.includes('left'));
    for await (const _ of (await engine.watch('alice', running, undefined, signal))!) break;
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  run('a failing handler ends the job as TOOL_FAILED with a safe message', async () => {
    await open();
    const internal = await start('failing', { friendly: false });
    const friendly = await start('failing', { friendly: true });
    expect((await follow(internal.jobId)).at(-1)!.state).toEqual({
      job_id: internal.jobId,
      status: 'error',
      error: { code: 'TOOL_FAILED', message: 'the job failed' },
      seq: expect.any(Number),
    });
    expect((await follow(friendly.jobId)).at(-1)!.state).toMatchObject({
      error: { code: 'TOOL_FAILED', message: 'the input file was empty' },
    });
  });

  run('forgets a finished job after the retention time', async () => {
    let clock = Date.now();
    await open({ retentionMs: 60_000, now: () => clock });
    const { jobId } = await start('count_primes', { below: 10, steps: 1 });
    await follow(jobId);
    clock += 59_000;
    expect((await engine.get('alice', jobId))?.status).toBe('done');
    clock += 2_000;
    expect(await engine.get('alice', jobId)).toBeUndefined();
  });

  run(
    'on close, lets running jobs finish within the grace period and interrupts the rest',
    async () => {
      await open({ concurrency: 2 });
      const quick = await start('count_primes', { below: 5_000, steps: 50 });
      const stuck = await start('held', { label: 'stuck' });
      await held.until(() => held.started.includes('stuck'));
      const watching = follow(stuck.jobId);
      await engine.close({ graceMs: 500 });
      expect(held.aborted.has('stuck')).toBe(true);
      expect((await watching).at(-1)!.state).toMatchObject({
        status: 'error',
        error: { code: 'INTERRUPTED' },
      });
      expect((await engine.get('alice', quick.jobId))?.status).toBe('done');
    },
  );

  /**
   * The job-test handlers, with count_primes (a retryable job) noting each attempt and, where
   * `hang`, never returning: it runs until its process dies.
   */
  function countingAttempts(attempts: number[], hang: boolean): Handlers<typeof jobTestTools> {
    const handlers = jobTestHandlers(held);
    return {
      ...handlers,
      count_primes: async (args, job) => {
        attempts.push(job.attempt);
        held.changed();
        if (!hang) return handlers.count_primes(args, job);
        return new Promise((_, reject) => {
          job.signal.addEventListener('abort', () => reject(job.signal.reason));
        });
      },
    };
  }

  run('a job that reaches a process with no handler for it ends TOOL_FAILED', async () => {
    await open({ concurrency: 1 });
    await start('held', { label: 'first' });
    const { jobId } = await start('count_primes', { below: 10, steps: 1 });
    await held.until(() => held.started.includes('first'));
    await kill();
    // Its successor is of a build without count_primes.
    await open({ without: 'count_primes' });
    expect((await follow(jobId)).at(-1)!.state).toEqual({
      job_id: jobId,
      status: 'error',
      error: { code: 'TOOL_FAILED', message: 'no handler for "count_primes" here' },
      seq: expect.any(Number),
    });
  });

  run(
    'after a crash, a retryable job runs once more, and a job that is not ends INTERRUPTED',
    async () => {
      const attempts: number[] = [];
      await open({ handlers: countingAttempts(attempts, true) });
      const retryable = await start('count_primes', { below: 1_000, steps: 2 });
      const once = await start('held', { label: 'once' });
      await held.until(() => attempts.length === 1 && held.started.includes('once'));
      await kill();
      await open({ handlers: countingAttempts(attempts, false) });
      expect((await follow(retryable.jobId, undefined, 'alice', 25_000)).at(-1)!.state).toEqual({
        job_id: retryable.jobId,
        status: 'done',
        output: { count: 168 },
        seq: expect.any(Number),
      });
      expect(attempts).toEqual([1, 2]);
      expect((await follow(once.jobId, undefined, 'alice', 25_000)).at(-1)!.state).toMatchObject({
        status: 'error',
        error: { code: 'INTERRUPTED' },
      });
    },
  );

  run('a retryable job cut off by a second crash ends INTERRUPTED', async () => {
    const attempts: number[] = [];
    await open({ handlers: countingAttempts(attempts, true) });
    const { jobId } = await start('count_primes', { below: 1_000, steps: 2 });
    await held.until(() => attempts.length === 1);
    await kill();
    await open({ handlers: countingAttempts(attempts, true) });
    await held.until(() => attempts.length === 2, 15_000);
    await kill();
    await open({ handlers: countingAttempts(attempts, false) });
    expect((await follow(jobId, undefined, 'alice', 25_000)).at(-1)!.state).toMatchObject({
      status: 'error',
      error: { code: 'INTERRUPTED' },
    });
    expect(attempts).toEqual([1, 2]);
  });
});

describe('Redis in CI', () => {
  it.runIf(process.env.CI && !redisUrl)('runs the Redis suites (never skipped in CI)', () => {
    throw new Error('Redis tests must run in CI: set SIGNET_TEST_REDIS_URL');
  });
});

describe.skipIf(!redisUrl)('Redis nonce store', () => {
  it('accepts a nonce once, even among 100 concurrent claims, per client', async () => {
    const redis = failFastRedis(redisUrl!);
    try {
      await connected(redis, redisUrl!);
      const store = new RedisNonceStore(redis, `signet-test-${randomUUID()}`);
      const expires = Date.now() + 60_000;
      const claims = await Promise.all(
        Array.from({ length: 100 }, () => store.claim('alice', 'nonce-000000000001', expires)),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await store.claim('bob', 'nonce-000000000001', expires)).toBe(true);
    } finally {
      redis.disconnect();
    }
  });

  it('answers STORE_UNAVAILABLE at once when Redis cannot be reached', async () => {
    const redis = failFastRedis('redis://127.0.0.1:1');
    redis.on('error', () => {});
    try {
      const started = Date.now();
      const error = await new RedisNonceStore(redis)
        .claim('alice', 'nonce-000000000001', Date.now() + 60_000)
        .catch((e: unknown) => e);
      expect((error as SignetError).reason).toBe('STORE_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      redis.disconnect();
    }
  });
});

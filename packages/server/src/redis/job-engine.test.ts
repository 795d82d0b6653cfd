// The Redis job engine when the store fails part-way through a call (the engine-independent
// behaviour is in jobs/engine.conformance.test.ts).
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { JobState } from '@signet/protocol';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type SignetError, StoreUnavailableError } from '../errors.ts';
import { type Handlers, jobDefinitions } from '../handlers.ts';
import {
  HeldJobs,
  type JobTestTools,
  jobTestHandlers,
  jobTestTools,
} from '../testing/job-tools.ts';
import { connected, failFastRedis } from './connection.ts';
import { BullJobEngine } from './job-engine.ts';
import type { RedisJobRecords } from './scripts.ts';

const redisUrl = process.env.SIGNET_TEST_REDIS_URL;

/** Polls the job until it has `status`; rejects after `ms`. */
async function eventuallyState(
  engine: BullJobEngine,
  clientId: string,
  jobId: string,
  status: JobState['status'],
  ms = 10_000,
): Promise<JobState | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const state = await engine.get(clientId, jobId);
    if (state?.status === status || Date.now() > deadline) return state;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
if (!redisUrl) console.warn('Redis tests skipped: set SIGNET_TEST_REDIS_URL to run them');

describe('Redis in CI', () => {
  it.runIf(process.env.CI && !redisUrl)(
    'runs the Redis job engine tests (never skipped in CI)',
    () => {
      throw new Error('Redis tests must run in CI: set SIGNET_TEST_REDIS_URL');
    },
  );
});

describe.skipIf(!redisUrl)('Redis job engine, store failing part-way or racing', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** An engine on queue `id`: a worker, or with `runHandlers` false an API server. */
  async function open(
    handlers: Handlers<JobTestTools> = jobTestHandlers(new HeldJobs()),
    id: string = randomUUID(),
    runHandlers = true,
  ) {
    const redis = failFastRedis(redisUrl!);
    await connected(redis, redisUrl!);
    const engine = new BullJobEngine({
      url: redisUrl!,
      redis,
      definitions: jobDefinitions(jobTestTools, handlers),
      logger: pino({ level: 'silent' }),
      runHandlers,
      queueName: `partial-${id}`,
      prefix: `signet-test-${id}`,
      lockMs: 2_000,
    });
    await engine.ready();
    cleanups.push(async () => {
      await engine.close({ graceMs: 0 });
      redis.disconnect();
    });
    return { engine, redis };
  }

  const request = (requestId: string) => {
    const args = { below: 1_000, steps: 2 };
    return {
      clientId: 'alice',
      requestId,
      tool: 'count_primes',
      args,
      argsHash: JSON.stringify(args),
    };
  };
  /** A start of the `held` job labelled `label`. */
  const heldRequest = (requestId: string, label: string) => ({
    ...request(requestId),
    tool: 'held',
    args: { label },
    argsHash: label,
  });

  it('a retried start completes a start whose first write failed', async () => {
    const { engine, redis } = await open();
    // The claim of the request_id and the record are one script: it fails as a whole.
    const scripts = redis as unknown as { signetStart: (...args: string[]) => Promise<number> };
    const start = scripts.signetStart;
    scripts.signetStart = () => Promise.reject(new Error('Connection is closed.'));
    await expect(engine.start(request('r1'))).rejects.toBeInstanceOf(StoreUnavailableError);
    scripts.signetStart = start;

    // The caller retries (same request_id, same args): the job exists and runs to the end.
    const { jobId } = await engine.start(request('r1'));
    expect(await eventuallyState(engine, 'alice', jobId, 'done')).toMatchObject({
      status: 'done',
      output: { count: 168 },
    });
    expect((await engine.start(request('r1'))).jobId).toBe(jobId);
  });

  it('a retried start completes a start that failed before its job was queued', async () => {
    const { engine } = await open();
    const queue = (engine as unknown as { queue: { add: (...args: unknown[]) => unknown } }).queue;
    const add = queue.add;
    queue.add = () => Promise.reject(new Error('Connection is closed.'));
    await expect(engine.start(request('r2'))).rejects.toBeInstanceOf(StoreUnavailableError);
    queue.add = add;

    const { jobId } = await engine.start(request('r2'));
    expect(await eventuallyState(engine, 'alice', jobId, 'done')).toMatchObject({
      status: 'done',
      output: { count: 168 },
    });
  });

  /**
   * The job-test handlers, with count_primes noting how it ended; and a long count_primes job:
   * minutes of work in tiny steps, each reporting progress (the worker writes without pause).
   */
  function notingEnd() {
    const handlers = jobTestHandlers(new HeldJobs());
    let stopped!: (how: string) => void;
    const ended = new Promise<string>((resolve) => {
      stopped = resolve;
    });
    const noting: Handlers<JobTestTools> = {
      ...handlers,
      count_primes: (args, job) =>
        handlers.count_primes(args, job).finally(() => {
          stopped(job.signal.aborted ? 'aborted' : 'not aborted');
        }),
    };
    const args = { below: 50_000_000, steps: 50_000 };
    const long = (requestId: string) => ({
      ...request(requestId),
      args,
      argsHash: JSON.stringify(args),
    });
    /** How the handler ended, if within 5 s. */
    const endedWithin5s = () =>
      Promise.race([
        ended,
        new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 5_000)),
      ]);
    return { handlers: noting, long, endedWithin5s };
  }

  /** Starts `job` on `engine`, waits until it runs, cancels it; the handler must stop. */
  async function cancelRunning(
    engine: BullJobEngine,
    job: ReturnType<ReturnType<typeof notingEnd>['long']>,
    endedWithin5s: () => Promise<string>,
  ) {
    const { jobId } = await engine.start(job);
    expect(await eventuallyState(engine, 'alice', jobId, 'running')).toMatchObject({
      status: 'running',
    });
    expect(await engine.cancel('alice', jobId)).toMatchObject({ status: 'cancelled' });
    expect(await endedWithin5s()).toBe('aborted');
    expect(await engine.get('alice', jobId)).toMatchObject({ status: 'cancelled' });
  }

  /** The refusal of a start by alice under a cap of `max`, or undefined if it was admitted. */
  async function refusalAt(engine: BullJobEngine, requestId: string, max: number) {
    try {
      (await engine.admitStart('alice', requestId, max)).release();
      return undefined;
    } catch (error) {
      return (error as SignetError).reason;
    }
  }

  it('a start whose write failed gives its place under the cap back', async () => {
    const { engine, redis } = await open();
    const scripts = redis as unknown as { signetStart: (...args: string[]) => Promise<number> };
    const start = scripts.signetStart;
    scripts.signetStart = () => Promise.reject(new Error('Connection is closed.'));
    const admission = await engine.admitStart('alice', 'q1', 1);
    await expect(engine.start({ ...heldRequest('q1', 'q1'), admission })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(await refusalAt(engine, 'q2', 1)).toBe('RATE_LIMITED');
    admission.release();
    scripts.signetStart = start;
    expect(await refusalAt(engine, 'q2', 1)).toBeUndefined();
  });

  it('the place of a start whose process died lapses (its reservation has an expiry)', async () => {
    const { engine } = await open();
    const records = (engine as unknown as { records: RedisJobRecords }).records;
    // Admitted, and never started nor given back: as if its API server died just after.
    expect(await records.admit('alice', 'q3', randomUUID(), 1, 200)).toBe(2);
    expect(await refusalAt(engine, 'q4', 1)).toBe('RATE_LIMITED');
    await expect.poll(() => refusalAt(engine, 'q4', 1), { timeout: 5_000 }).toBeUndefined();
  });

  it('a cancel whose message the worker missed stops the handler at its next progress', async () => {
    const { handlers, long, endedWithin5s } = notingEnd();
    const { engine } = await open(handlers);
    // As if the worker were reconnecting when the cancel was announced.
    await (engine as unknown as { worker: { cancels: Redis } }).worker.cancels.unsubscribe();
    await cancelRunning(engine, long('r3'), endedWithin5s);
  });

  it('a cancel wins against a job that reports progress back to back', async () => {
    const { handlers, long, endedWithin5s } = notingEnd();
    const id = randomUUID();
    await open(handlers, id);
    // The cancel comes through another process's engine, which has no copy of the record.
    const { engine: api } = await open(undefined, id, false);
    await cancelRunning(api, long('r4'), endedWithin5s);
  });

  it('a watcher that misses one announcement in the middle still sees every change, in order', async () => {
    // A held job that reports progress each time the test lets it.
    const steps: Array<() => void> = [];
    const jobs = new HeldJobs();
    const stepped: Handlers<JobTestTools> = {
      ...jobTestHandlers(jobs),
      held: async ({ label }, job) => {
        for (let current = 1; current <= 3; current++) {
          await new Promise<void>((resolve) => {
            steps.push(resolve);
            jobs.changed();
          });
          job.progress({ current, total: 3 });
        }
        return { label };
      },
    };
    const waitingSteps = (n: number) => jobs.until(() => steps.length >= n);
    const id = randomUUID();
    await open(stepped, id);
    const { engine: api } = await open(undefined, id, false);
    const { jobId } = await api.start(heldRequest('r6', 'stepped'));
    await waitingSteps(1);
    const updates = await api.watch('alice', jobId, undefined, AbortSignal.timeout(10_000));
    // This server does not hear the announcement of the job's second version.
    const changes = (api as unknown as { feed: { changes: EventEmitter } }).feed.changes;
    const emit = changes.emit.bind(changes);
    changes.emit = (event: string | symbol, ...args: unknown[]) => {
      const seq = (args[0] as { seq: number } | undefined)?.seq;
      return event === jobId && seq === 2 ? true : emit(event, ...args);
    };
    const seen: Array<{ id: string; status: string; current?: number }> = [];
    const followed = (async () => {
      for await (const update of updates!) {
        seen.push({
          id: update.id,
          status: update.state.status,
          current: 'progress' in update.state ? update.state.progress?.current : undefined,
        });
      }
    })();
    for (let step = 1; step <= 3; step++) {
      await waitingSteps(step);
      steps[step - 1]!();
    }
    const bound = new Promise<string>((resolve) => setTimeout(() => resolve('no end'), 5_000));
    expect(await Promise.race([followed.then(() => 'ended'), bound])).toBe('ended');
    expect(seen.map((update) => update.id)).toEqual(['1', '2', '3', '4', '5']);
    expect(seen.map((update) => update.current)).toEqual([undefined, 1, 2, 3, undefined]);
    expect(seen.at(-1)?.status).toBe('done');
  });

  it('a watcher sees its job end even when the announcement is lost', async () => {
    const held = new HeldJobs();
    const id = randomUUID();
    await open(jobTestHandlers(held), id);
    const { engine: api } = await open(undefined, id, false);
    const { jobId } = await api.start(heldRequest('r5', 'quiet'));
    await held.until(() => held.started.includes('quiet'));
    const updates = await api.watch('alice', jobId, undefined, AbortSignal.timeout(10_000));
    const seen: string[] = [];
    const followed = (async () => {
      for await (const update of updates!) seen.push(update.state.status);
    })();
    // This server stops hearing announcements (as if its reader fell behind the stream's end).
    (api as unknown as { feed: { reader: Redis } }).feed.reader.disconnect();
    held.release('quiet');
    const bound = new Promise<string>((resolve) => setTimeout(() => resolve('no end'), 5_000));
    expect(await Promise.race([followed.then(() => 'ended'), bound])).toBe('ended');
    expect(seen.at(-1)).toBe('done');
  });
});

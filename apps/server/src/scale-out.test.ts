// Scale-out on Redis and BullMQ with real processes: API servers (`pnpm serve`, SIGNET_ROLE=api)
// and workers (`pnpm worker`) sharing one Redis act as one server; a worker's death and a Redis
// outage lose nothing and hang nothing. Each test runs its own redis-server, so that it can take
// Redis down, and so that it neither sees nor disturbs what other test files do on a shared one.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient, jobHandle, signetReason } from '@signet/client';
import type { JobState } from '@signet/protocol';
import { generateKeyringFile, Keyring, type SignetRouter, startSignetServer } from '@signet/server';
import { redisBackend } from '@signet/server/redis';
import {
  eventually,
  HeldJobs,
  type JobTestTools,
  jobTestHandlers,
  jobTestTools,
  postEnvelope,
  type ServerProcess,
  signedRequest,
  startProcess,
  WORKER_READY,
} from '@signet/server/testing';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedisServer } from './testing/redis-server.ts';
import type { tools } from './tools/contracts.ts';

const redisUrl = process.env.SIGNET_TEST_REDIS_URL;
if (!redisUrl) {
  console.warn('Redis tests skipped: set SIGNET_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379)');
}

describe('Redis in CI', () => {
  it.runIf(process.env.CI && !redisUrl)('runs the scale-out tests (never skipped in CI)', () => {
    throw new Error('Redis tests must run in CI: set SIGNET_TEST_REDIS_URL');
  });
});

const LOCK_MS = 2_000;
const keyringFile = generateKeyringFile({ serverId: 'mcp-server-001', clientIds: ['client-001'] });
const key = keyringFile.clients[0]!.keys[0]!;
const credentials = { serverId: keyringFile.server_id, clientId: 'client-001', key };

type Router = SignetRouter<typeof tools>;

let dir: string;
let keyringPath: string;
const processes: ServerProcess[] = [];
const redises: RedisServer[] = [];
const closers: Array<() => Promise<void>> = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'signet-scale-'));
  keyringPath = join(dir, 'keyring.json');
  writeFileSync(keyringPath, JSON.stringify(keyringFile));
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close().catch(() => {})));
  await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
  await Promise.all(redises.splice(0).map((r) => r.dispose()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function redisServer(opts: { persistent?: boolean } = {}): Promise<RedisServer> {
  const redis = await startRedisServer(opts);
  redises.push(redis);
  return redis;
}

function signetEnv(redis: RedisServer) {
  return {
    SIGNET_STORE: redis.url,
    SIGNET_PORT: '0',
    SIGNET_KEYRING: keyringPath,
    SIGNET_LOCK_MS: String(LOCK_MS),
    SIGNET_GRACE_MS: '0',
  };
}

/** `pnpm serve` with SIGNET_ROLE=api: answers calls, runs no job. */
async function apiServer(redis: RedisServer): Promise<ServerProcess> {
  const started = await startProcess('pnpm', ['serve'], {
    ...signetEnv(redis),
    SIGNET_ROLE: 'api',
  });
  processes.push(started);
  return started;
}

/** `pnpm worker`: runs jobs, answers no call. */
async function worker(redis: RedisServer): Promise<ServerProcess> {
  const started = await startProcess('pnpm', ['worker'], signetEnv(redis), 30_000, WORKER_READY);
  processes.push(started);
  return started;
}

function clientOf(url: string, fetchImpl?: typeof fetch) {
  return createSignetClient<Router>({
    url,
    ...credentials,
    ...(fetchImpl ? { fetch: fetchImpl } : {}),
  });
}

/** Resolves with `promise`, or rejects after `ms`: nothing here may hang. */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function runningWithProgress(poll: () => Promise<JobState<unknown>>) {
  const state = await poll();
  return state.status === 'running' && state.progress ? state : undefined;
}

/** Whether BullMQ has the job as finished (its handler returned or threw). */
async function finishedInQueue(redis: RedisServer, jobId: string): Promise<boolean> {
  const completed = await redis.cli('ZSCORE', 'bull:signet-jobs:completed', jobId);
  const failed = await redis.cli('ZSCORE', 'bull:signet-jobs:failed', jobId);
  return completed !== '' || failed !== '';
}

const RANK = { queued: 0, running: 1, done: 2, error: 2, cancelled: 2 } as const;

describe.skipIf(!redisUrl)('scale-out on Redis', () => {
  it('2 API servers and 2 workers on one Redis act as one server', async () => {
    const redis = await redisServer();
    const [a, b] = await Promise.all([
      apiServer(redis),
      apiServer(redis),
      worker(redis),
      worker(redis),
    ]);
    const viaA = clientOf(a!.url);
    const viaB = clientOf(b!.url);

    // Started through A; its progress is visible through B, and B streams every change in order.
    const ticket = await viaA.start_long_task.mutate({ seconds: 3, payload: { via: 'A' } });
    const onB = jobHandle(viaB, ticket);
    const states: JobState<unknown>[] = [];
    const watching = within(
      15_000,
      (async () => {
        for await (const state of onB.watch()) states.push(state);
      })(),
      'the watch through B to end',
    );
    const progressed = await eventually(
      () => runningWithProgress(() => onB.poll()),
      10_000,
      'progress through B',
    );
    expect(progressed.progress!.total).toBe(3);
    await watching;

    expect(states.at(-1)).toEqual({ job_id: ticket.job_id, status: 'done', output: { via: 'A' } });
    for (let i = 1; i < states.length; i++) {
      expect(RANK[states[i]!.status]).toBeGreaterThanOrEqual(RANK[states[i - 1]!.status]);
    }
    const steps = states.flatMap((s) => (s.status === 'running' && s.progress ? [s.progress] : []));
    // Every progress report from whenever the watch began, none lost, none out of order.
    expect(steps.at(-1)).toMatchObject({ current: 3, total: 3 });
    expect(steps.map((p) => p.current)).toEqual(
      Array.from({ length: steps.length }, (_, i) => 3 - steps.length + 1 + i),
    );
    expect(steps.length).toBeGreaterThanOrEqual(3);

    // Started through A, cancelled through B: the cancel reaches the handler on whichever worker
    // runs it (BullMQ sees the job finish long before its 20 s), and it never goes on to done.
    const doomedTicket = await viaA.start_long_task.mutate({ seconds: 20, payload: {} });
    const doomed = jobHandle(viaA, doomedTicket);
    await eventually(() => runningWithProgress(() => doomed.poll()), 10_000, 'the job to run');
    const cancelledAt = Date.now();
    expect(await jobHandle(viaB, doomedTicket).cancel()).toEqual({
      job_id: doomed.id,
      status: 'cancelled',
    });
    await eventually(
      async () => ((await finishedInQueue(redis, doomed.id)) ? true : undefined),
      5_000,
      'the cancelled handler to stop',
    );
    console.info(`scale-out: the handler stopped ${Date.now() - cancelledAt} ms after the cancel`);
    expect(await doomed.poll()).toEqual({ job_id: doomed.id, status: 'cancelled' });
    expect(await jobHandle(viaB, doomedTicket).poll()).toEqual({
      job_id: doomed.id,
      status: 'cancelled',
    });

    // A nonce used on A is refused on B: the identical signed body, twice.
    const signer = { serverId: credentials.serverId, clientId: credentials.clientId, ...key };
    const body = JSON.stringify(signedRequest(signer, 'batch_sum', { numbers: [1, 2, 3] }));
    const first = await postEnvelope(a!.url, 'batch_sum', body);
    expect(first.status).toBe(200);
    expect(first.json?.result?.data.result).toEqual({ count: 3, total: 6 });
    const replayed = await postEnvelope(b!.url, 'batch_sum', body);
    expect(replayed.status).toBe(409);
    expect(replayed.json?.error?.data.reason).toBe('REPLAYED_NONCE');
  }, 60_000);

  it('a job whose worker is SIGKILLed ends INTERRUPTED within a bound, never lost', async () => {
    const redis = await redisServer();
    const [a, first] = await Promise.all([apiServer(redis), worker(redis)]);
    const viaA = clientOf(a.url);
    // Only one worker is up, so it is the one running the job.
    const job = jobHandle(viaA, await viaA.start_long_task.mutate({ seconds: 20, payload: {} }));
    await eventually(() => runningWithProgress(() => job.poll()), 10_000, 'the job to run');
    await worker(redis);

    const killedAt = Date.now();
    await first.kill('SIGKILL');
    const seen = new Set<string>();
    // poll() would throw JOB_NOT_FOUND if the job were lost.
    const final = await eventually(
      async () => {
        const state = await job.poll();
        seen.add(state.status);
        return state.status === 'running' ? undefined : state;
      },
      20_000,
      'the job to end',
    );
    const tookMs = Date.now() - killedAt;
    console.info(`scale-out: job of a SIGKILLed worker ended INTERRUPTED after ${tookMs} ms`);
    expect(final).toMatchObject({ status: 'error', error: { code: 'INTERRUPTED' } });
    expect([...seen].sort()).toEqual(['error', 'running']);
    // start_long_task is not retryable: nothing runs it again.
    expect(await job.poll()).toMatchObject({ status: 'error', error: { code: 'INTERRUPTED' } });
  }, 60_000);

  it('a retryable job whose worker is SIGKILLed runs once more, on the other worker', async () => {
    const redis = await redisServer();
    const ledger = join(dir, `ledger-${randomUUID()}.jsonl`);
    writeFileSync(ledger, '');
    const starts = () =>
      readFileSync(ledger, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { job: string; attempt: number; pid: number });
    const jobWorker = async () => {
      const started = await startProcess(
        process.execPath,
        ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/testing/job-worker.ts'],
        {
          JOB_WORKER_REDIS: redis.url,
          JOB_WORKER_LOCK_MS: String(LOCK_MS),
          JOB_WORKER_LEDGER: ledger,
        },
        30_000,
        WORKER_READY,
      );
      processes.push(started);
      return started;
    };
    // The API server for the job-test tools runs in this process; the workers are processes.
    const keyring = Keyring.parse(keyringFile);
    const [server, first] = await Promise.all([
      startSignetServer({
        contracts: jobTestTools,
        handlers: jobTestHandlers(new HeldJobs()),
        keyring: () => keyring,
        store: redisBackend({ url: redis.url, runHandlers: false, lockMs: LOCK_MS }),
        logger: pino({ level: 'silent' }),
      }),
      jobWorker(),
    ]);
    closers.push(() => server.close({ graceMs: 0 }));
    const client = createSignetClient<SignetRouter<JobTestTools>>({
      url: server.url,
      ...credentials,
    });

    // Long enough never to finish here: trial division up to 50 million in 1000 steps.
    const { job_id } = await client.count_primes.mutate({ below: 50_000_000, steps: 1000 });
    await eventually(async () => (starts().length === 1 ? true : undefined), 10_000, 'a start');
    const second = await jobWorker();
    await first.kill('SIGKILL');

    await eventually(async () => (starts().length === 2 ? true : undefined), 20_000, 'a rerun');
    expect(starts()).toEqual([
      { job: job_id, attempt: 1, pid: first.child.pid },
      { job: job_id, attempt: 2, pid: second.child.pid },
    ]);
    const rerun = await eventually(
      () => runningWithProgress(() => client.poll_job.mutate({ job_id })),
      10_000,
      'the rerun to report progress',
    );
    expect(rerun.status).toBe('running');
  }, 60_000);

  it('while Redis is down calls fail fast with 503 STORE_UNAVAILABLE; afterwards nothing is lost', async () => {
    const redis = await redisServer({ persistent: true });
    const [a, b, w] = await Promise.all([apiServer(redis), apiServer(redis), worker(redis)]);
    const statuses: number[] = [];
    const recording: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      statuses.push(response.status);
      return response;
    };
    const viaA = clientOf(a!.url, recording);
    const viaB = clientOf(b!.url, recording);

    const finished = jobHandle(
      viaA,
      await viaA.start_long_task.mutate({ seconds: 1, payload: { kept: 'yes' } }),
    );
    expect(await within(10_000, finished.result(), 'the job to finish')).toEqual({ kept: 'yes' });

    /** Makes a call that must be refused with 503 STORE_UNAVAILABLE; how long it took. */
    const refused = async (call: () => Promise<unknown>, what: string) => {
      statuses.length = 0;
      const started = Date.now();
      const error = await within(10_000, call(), what).then(
        () => undefined,
        (e: unknown) => e,
      );
      const tookMs = Date.now() - started;
      expect(signetReason(error)).toBe('STORE_UNAVAILABLE');
      expect(statuses).toEqual([503]);
      return tookMs;
    };
    const calls: Array<() => Promise<unknown>> = [
      () => viaA.batch_sum.mutate({ numbers: [1, 2] }),
      () => viaB.poll_job.mutate({ job_id: finished.id }),
      () => viaB.batch_sum.mutate({ numbers: [3] }),
      () => viaA.poll_job.mutate({ job_id: finished.id }),
    ];

    // A Redis that stops answering on open connections: calls end at the command timeout (2 s).
    redis.freeze();
    const frozenTimings: number[] = [];
    for (const call of calls.slice(0, 2)) {
      frozenTimings.push(await refused(call, 'a call while Redis is frozen'));
    }
    expect(Math.max(...frozenTimings)).toBeLessThan(3_000);
    redis.thaw();
    await eventually(
      async () => {
        try {
          return await viaA.batch_sum.mutate({ numbers: [1] });
        } catch (error) {
          if (signetReason(error) === 'STORE_UNAVAILABLE') return undefined;
          throw error;
        }
      },
      10_000,
      'calls to succeed after the freeze',
    );

    // A job whose handler ends while Redis is down cannot record its end then.
    const through = jobHandle(
      viaA,
      await viaA.start_long_task.mutate({ seconds: 3, payload: { through: true } }),
    );
    await eventually(() => runningWithProgress(() => through.poll()), 10_000, 'the job to run');

    await redis.kill();
    const downAt = Date.now();
    const timings: number[] = [];
    // Keep Redis down for 5 s, calling all the while: every call is refused at once.
    while (Date.now() - downAt < 5_000) {
      for (const call of calls) timings.push(await refused(call, 'a call while Redis is down'));
      await new Promise((resolve) => setTimeout(resolve, 200)); // pacing, not synchronisation
    }
    expect(Math.max(...timings)).toBeLessThan(3_000);
    // Neither server crashed: both are still up and healthy.
    for (const server of [a!, b!]) {
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    }
    for (const p of [a!, b!, w!]) expect(p.child.exitCode).toBeNull();

    await redis.restart();
    const upAt = Date.now();
    await eventually(
      async () => {
        try {
          await viaA.batch_sum.mutate({ numbers: [1] });
          await viaB.batch_sum.mutate({ numbers: [1] });
          return true;
        } catch (error) {
          if (signetReason(error) === 'STORE_UNAVAILABLE') return undefined;
          throw error;
        }
      },
      15_000,
      'calls to succeed again',
    );
    const recoveryMs = Date.now() - upAt;
    const sorted = [...timings].sort((x, y) => x - y);
    console.info(
      `scale-out: ${timings.length} calls during the outage got 503 in ` +
        `median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms; ` +
        `calls succeeded again ${recoveryMs} ms after Redis was back; ` +
        `with Redis frozen, calls got 503 after ${frozenTimings.join(', ')} ms`,
    );

    // The finished job's result survived the outage (Redis kept it in its append-only file).
    const expected = { job_id: finished.id, status: 'done', output: { kept: 'yes' } };
    expect(await viaA.poll_job.mutate({ job_id: finished.id })).toEqual(expected);
    expect(await viaB.poll_job.mutate({ job_id: finished.id })).toEqual(expected);
    // The job that ran through the outage is not stuck in running: its lock lapsed, so it ends
    // as a job whose worker stopped.
    const ended = await eventually(
      async () => {
        const state = await through.poll();
        return state.status === 'running' ? undefined : state;
      },
      20_000,
      'the job that ran through the outage to end',
    );
    expect(ended).toMatchObject({ status: 'error', error: { code: 'INTERRUPTED' } });
    // The worker reconnected by itself: a new job runs to the end, watched through B.
    const after = jobHandle(viaB, await viaA.start_long_task.mutate({ seconds: 1, payload: {} }));
    expect(await within(15_000, after.result(), 'a job after the outage')).toEqual({});
    // Reconnecting is quiet: no unhandled connection errors printed.
    for (const p of [a!, b!, w!]) {
      expect(p.output()).not.toContain('Unhandled error event');
      expect(p.output()).not.toMatch(/^Error: /m);
    }
  }, 60_000);
});

// Several deployments on one Redis, told apart by their namespaces.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { jobDefinitions } from '../handlers.ts';
import { HeldJobs, jobTestHandlers, jobTestTools } from '../testing/job-tools.ts';
import { redisBackend, startSignetWorker } from './backend.ts';

const redisUrl = process.env.SIGNET_TEST_REDIS_URL;
const logger = pino({ level: 'silent' });

describe.skipIf(!redisUrl)('Redis backend namespaces', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A worker of `namespace` whose count_primes handler notes each job it runs. */
  async function worker(namespace: string, ran: string[]) {
    const handlers = jobTestHandlers(new HeldJobs());
    const running = await startSignetWorker({
      contracts: jobTestTools,
      handlers: {
        ...handlers,
        count_primes: (args, job) => {
          ran.push(job.jobId);
          return handlers.count_primes(args, job);
        },
      },
      url: redisUrl!,
      logger,
      namespace,
    });
    cleanups.push(() => running.close({ graceMs: 0 }));
  }

  /** The backend of an API server of `namespace`. */
  async function apiServer(namespace: string) {
    const api = await redisBackend({ url: redisUrl!, runHandlers: false, namespace }).open({
      definitions: jobDefinitions(jobTestTools, jobTestHandlers(new HeldJobs())),
      logger,
      concurrency: undefined,
      retentionMs: undefined,
      now: Date.now,
    });
    cleanups.push(async () => {
      await api.jobs.close();
      await api.close();
    });
    return api;
  }

  it("a deployment's jobs run only on its own workers", async () => {
    const [mine, theirs] = [`ns-${randomUUID()}`, `ns-${randomUUID()}`];
    const ranByMine: string[] = [];
    const ranByTheirs: string[] = [];
    await worker(mine, ranByMine);
    await worker(theirs, ranByTheirs);
    const api = await apiServer(mine);

    const args = { below: 100, steps: 1 };
    const jobIds = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const request = { clientId: 'alice', requestId: `r${i}`, tool: 'count_primes', args };
        return (await api.jobs.start({ ...request, argsHash: JSON.stringify(args) })).jobId;
      }),
    );
    const deadline = Date.now() + 10_000;
    for (const jobId of jobIds) {
      for (;;) {
        const state = await api.jobs.get('alice', jobId);
        if (state?.status === 'done' || Date.now() > deadline) {
          expect(state).toMatchObject({ status: 'done', output: { count: 25 } });
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    // Were the queue shared, the other worker would have taken about half of them.
    expect(ranByMine.sort()).toEqual([...jobIds].sort());
    expect(ranByTheirs).toEqual([]);
  });

  it("a deployment's nonces are its own", async () => {
    const [mine, theirs] = [`ns-${randomUUID()}`, `ns-${randomUUID()}`];
    const [a, b] = await Promise.all([apiServer(mine), apiServer(theirs)]);
    const expires = Date.now() + 60_000;
    expect(await a.nonces.claim('alice', 'nonce-1', expires)).toBe(true);
    expect(await a.nonces.claim('alice', 'nonce-1', expires)).toBe(false);
    expect(await b.nonces.claim('alice', 'nonce-1', expires)).toBe(true);
  });
});

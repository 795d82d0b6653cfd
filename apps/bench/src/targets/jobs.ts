// A Signet server whose only job is a no-op, to measure job round trips (start → done).
// BENCH_STORE: sqlite:<path> (jobs run in the server, as `pnpm serve` runs them) or redis://…
// (an API-only server, SIGNET_ROLE=api, and one `pnpm worker` process running the jobs, as a
// scaled-out deployment runs them; bare BullMQ's worker is a process of its own too).
// BENCH_KEYRING: keyring file. BENCH_NAMESPACE: the Redis deployment's namespace (the runner's
// own, so that the run neither meets a real deployment's jobs nor leaves keys behind). With
// BENCH_ROLE=worker this process is that worker. BENCH_WORKER_CONCURRENCY: jobs run at once.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { contractSet, defineJob } from '@signet/contracts';
import { Keyring, startSignetServer } from '@signet/server';
import { redisBackend, startSignetWorker } from '@signet/server/redis';
import { SqliteStore } from '@signet/server/sqlite';
import { WORKER_READY } from '@signet/server/testing';
import pino from 'pino';
import { z } from 'zod';

const noop = defineJob({
  name: 'noop',
  description: 'Does nothing and returns at once.',
  input: z.strictObject({}),
  output: z.strictObject({}),
});
const contracts = contractSet(noop);
const handlers = { noop: async () => ({}) };
const store = process.env.BENCH_STORE!;
const logger = pino({ level: 'warn' });
const concurrency = Number(process.env.BENCH_WORKER_CONCURRENCY ?? 32);
const namespace = process.env.BENCH_NAMESPACE;

if (process.env.BENCH_ROLE === 'worker') {
  await startSignetWorker({ contracts, handlers, url: store, logger, concurrency, namespace });
  console.log('worker ready');
} else {
  if (store.startsWith('redis')) {
    // (Not startProcess from the test fixtures: it detaches its child, and this one must stay in
    // this process's group, so that the runner's kill of the group takes it too.)
    const worker = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
      env: { ...process.env, BENCH_ROLE: 'worker' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    process.on('exit', () => worker.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      worker.stdout.on('data', (chunk: Buffer) => {
        if (WORKER_READY.test(chunk.toString())) resolve();
      });
      worker.once('exit', (code) => reject(new Error(`the worker exited with ${code}`)));
    });
  }
  const keyring = Keyring.load(process.env.BENCH_KEYRING!);
  const server = await startSignetServer({
    contracts,
    handlers,
    keyring: () => keyring,
    store: store.startsWith('redis')
      ? redisBackend({ url: store, runHandlers: false, namespace })
      : new SqliteStore(store.slice('sqlite:'.length)),
    logger,
    concurrency,
  });
  console.log(`listening on ${server.url}`);
}
// Exit on SIGTERM (instead of being killed by it), so that `node --cpu-prof` can write a profile.
process.on('SIGTERM', () => process.exit(0));

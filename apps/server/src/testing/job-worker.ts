// A `pnpm worker`-like process with the job-test tools, for tests that must kill a real worker.
// Env: JOB_WORKER_REDIS (redis:// URL), JOB_WORKER_LOCK_MS, JOB_WORKER_LEDGER (a file where each
// count_primes start is appended as a JSON line).
import { startSignetWorker } from '@signet/server/redis';
import { jobTestTools, ledgerHandlers } from '@signet/server/testing';
import pino from 'pino';

await startSignetWorker({
  contracts: jobTestTools,
  handlers: ledgerHandlers(process.env.JOB_WORKER_LEDGER!),
  url: process.env.JOB_WORKER_REDIS!,
  logger: pino({ level: 'silent' }),
  lockMs: Number(process.env.JOB_WORKER_LOCK_MS ?? 2_000),
});
console.log('worker ready');

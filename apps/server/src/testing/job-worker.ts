// A `pnpm worker`-like process with the job-test tools, for tests that must kill a real worker.
// Env: JOB_WORKER_REDIS (redis:// URL), JOB_WORKER_LOCK_MS, JOB_WORKER_LEDGER (a file where each
// count_primes start is appended as a JSON line).
import { appendFileSync } from 'node:fs';
import { startSignetWorker } from '@signet/server';
import { HeldJobs, jobTestHandlers, jobTestTools } from '@signet/server/testing';
import pino from 'pino';

const ledger = process.env.JOB_WORKER_LEDGER!;
const handlers = jobTestHandlers(new HeldJobs());
await startSignetWorker({
  contracts: jobTestTools,
  handlers: {
    ...handlers,
    count_primes: (args, job) => {
      appendFileSync(
        ledger,
        `${JSON.stringify({ job: job.jobId, attempt: job.attempt, pid: process.pid })}\n`,
      );
      return handlers.count_primes(args, job);
    },
  },
  url: process.env.JOB_WORKER_REDIS!,
  logger: pino({ level: 'silent' }),
  lockMs: Number(process.env.JOB_WORKER_LOCK_MS ?? 2_000),
});
console.log('worker ready');

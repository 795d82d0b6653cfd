// A Signet server process with the job-test tools, for tests that must kill a real process.
// Env: JOB_SERVER_DB (SQLite path), JOB_SERVER_KEYRING (keyring path), JOB_SERVER_LEDGER (a file
// where each handler start is appended as a JSON line).
import { appendFileSync } from 'node:fs';
import { Keyring, SqliteStore, startSignetServer } from '@signet/server';
import { HeldJobs, jobTestHandlers, jobTestTools } from '@signet/server/testing';
import pino from 'pino';

const ledger = process.env.JOB_SERVER_LEDGER!;
const handlers = jobTestHandlers(new HeldJobs());
const server = await startSignetServer({
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
  keyring: () => Keyring.load(process.env.JOB_SERVER_KEYRING!),
  store: new SqliteStore(process.env.JOB_SERVER_DB!),
  logger: pino({ level: 'silent' }),
  concurrency: 8,
});
console.log(`listening on ${server.url}`);

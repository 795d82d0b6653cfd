// A Signet server process with the job-test tools, for tests that must kill a real process.
// Env: JOB_SERVER_DB (SQLite path), JOB_SERVER_KEYRING (keyring path), JOB_SERVER_LEDGER (a file
// where each handler start is appended as a JSON line).
import { Keyring, startSignetServer } from '@signet/server';
import { SqliteStore } from '@signet/server/sqlite';
import { jobTestTools, ledgerHandlers } from '@signet/server/testing';
import pino from 'pino';

const server = await startSignetServer({
  contracts: jobTestTools,
  handlers: ledgerHandlers(process.env.JOB_SERVER_LEDGER!),
  keyring: () => Keyring.load(process.env.JOB_SERVER_KEYRING!),
  store: new SqliteStore(process.env.JOB_SERVER_DB!),
  logger: pino({ level: 'silent' }),
  concurrency: 8,
});
console.log(`listening on ${server.url}`);

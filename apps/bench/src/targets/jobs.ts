// A Signet server whose only job is a no-op, to measure job round trips (start → done).
// BENCH_STORE: sqlite:<path> or redis://…; BENCH_KEYRING: keyring file.
import { cancelJob, contractSet, defineJob, pollJob, watchJob } from '@signet/contracts';
import { Keyring, redisBackend, SqliteStore, startSignetServer } from '@signet/server';
import pino from 'pino';
import { z } from 'zod';

const noop = defineJob({
  name: 'noop',
  description: 'Does nothing and returns at once.',
  input: z.strictObject({}),
  output: z.strictObject({}),
});
const contracts = contractSet(noop, pollJob, cancelJob, watchJob);
const store = process.env.BENCH_STORE!;
const keyring = Keyring.load(process.env.BENCH_KEYRING!);

const server = await startSignetServer({
  contracts,
  handlers: { noop: async () => ({}) },
  keyring: () => keyring,
  store: store.startsWith('redis')
    ? redisBackend({ url: store, runHandlers: true })
    : new SqliteStore(store.slice('sqlite:'.length)),
  logger: pino({ level: 'warn' }),
  concurrency: 32,
});
console.log(`listening on ${server.url}`);

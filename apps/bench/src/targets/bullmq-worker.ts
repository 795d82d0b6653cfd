// Bare BullMQ: a worker that completes a no-op job, for the add → completed baseline.
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const url = process.env.BENCH_REDIS!;
const worker = new Worker(process.env.BENCH_QUEUE!, async () => ({}), {
  connection: new Redis(url, { maxRetriesPerRequest: null }),
  concurrency: Number(process.env.BENCH_WORKER_CONCURRENCY ?? 32),
  removeOnComplete: { age: 3600 },
});
await worker.waitUntilReady();
console.log('worker ready');

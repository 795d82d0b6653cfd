import { setTimeout as sleep } from 'node:timers/promises';
import type { Handlers } from '@signet/server';
import type { Tools } from './contracts.ts';

/** The handlers of the example server's tools: one per tool, nothing else to wire. */
export function createHandlers(): Handlers<Tools> {
  return {
    batch_sum: ({ numbers }) => {
      let total = 0;
      for (const n of numbers) total += n;
      return { count: numbers.length, total };
    },

    // Works one second at a time, reporting progress after each, and stops when cancelled.
    start_long_task: async ({ seconds, payload }, job) => {
      job.progress({ current: 0, total: seconds, message: 'started' });
      for (let done = 1; done <= seconds; done++) {
        await sleep(1_000, undefined, { signal: job.signal });
        job.progress({ current: done, total: seconds, message: `${done}/${seconds} s` });
      }
      return payload;
    },
  };
}

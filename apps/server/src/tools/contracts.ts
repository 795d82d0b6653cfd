import { contractSet, defineJob, defineTool } from '@signet/contracts';
import { z } from 'zod';

// The example server's tools: the tutorial's two, with its names and shapes (DESIGN 1.6). The
// built-in tools (server_identity and job control) come with `contractSet`.

export const BATCH_SUM_MAX_NUMBERS = 10_000;

export const batchSum = defineTool({
  name: 'batch_sum',
  description: 'Adds up a list of numbers and says how many there were.',
  input: z.strictObject({
    numbers: z
      .array(z.number())
      .min(1)
      .max(BATCH_SUM_MAX_NUMBERS)
      .refine((numbers) => Number.isFinite(numbers.reduce((a, b) => a + b, 0)), {
        message: 'the sum overflows a double',
      }),
  }),
  output: z.strictObject({ count: z.int(), total: z.number() }),
});

export const startLongTask = defineJob({
  name: 'start_long_task',
  description:
    'Starts a job that works for `seconds` seconds, reporting progress each second, and then ' +
    'returns `payload` as its output.',
  input: z.strictObject({
    seconds: z.int().min(1).max(20),
    payload: z.record(z.string(), z.unknown()),
  }),
  output: z.record(z.string(), z.unknown()),
});

/** Every tool this server offers. Adding a tool: a contract here and a handler in handlers.ts. */
export const tools = contractSet(batchSum, startLongTask);
export type Tools = typeof tools;

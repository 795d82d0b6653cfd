import { JOB_STATUSES, PROTOCOL_VERSION } from '@signet/protocol';
import { z } from 'zod';
import { contractSet, defineJob, defineJobControl, defineTool } from './define.ts';

const jsonObject = z.record(z.string(), z.unknown());
const jobId = z.string().min(1).max(128).describe('the job_id that start returned');

export const serverIdentity = defineTool({
  name: 'server_identity',
  description:
    'Who this server is: its id, a fingerprint of its tool contracts, and what it supports.',
  input: z.strictObject({}),
  output: z.strictObject({
    server_id: z.string(),
    fingerprint: z.string().describe('sha256 of the canonical tool manifest'),
    capabilities: z.strictObject({
      protocol: z.literal(PROTOCOL_VERSION),
      tools: z.array(z.string()),
      limits: z.strictObject({
        max_body_bytes: z.int(),
        max_depth: z.int(),
        freshness_window_ms: z.int(),
      }),
    }),
  }),
});

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
  input: z.strictObject({ seconds: z.int().min(1).max(20), payload: jsonObject }),
  output: jsonObject,
});

const progress = z.strictObject({
  current: z.number(),
  total: z.number().optional(),
  message: z.string().optional(),
});

/** What poll_job, cancel_job and watch_job report (decoded from the envelope by the client). */
const jobState = z.strictObject({
  job_id: z.string(),
  status: z.enum(JOB_STATUSES),
  progress: progress.optional(),
  output: jsonObject.optional(),
  error: z
    .strictObject({ code: z.enum(['TOOL_FAILED', 'INTERRUPTED']), message: z.string() })
    .optional(),
});

export const pollJob = defineJobControl({
  name: 'poll_job',
  operation: 'poll',
  description: "A job's status, its progress while it runs, and its output once done.",
  input: z.strictObject({ job_id: jobId }),
  output: jobState,
});

export const cancelJob = defineJobControl({
  name: 'cancel_job',
  operation: 'cancel',
  description: 'Cancels a queued or running job; a finished job keeps its status.',
  input: z.strictObject({ job_id: jobId }),
  output: jobState,
});

export const watchJob = defineJobControl({
  name: 'watch_job',
  operation: 'watch',
  description:
    "Streams a job's status and progress changes over Server-Sent Events until it finishes. " +
    '`after` resumes after the event id last received.',
  input: z.strictObject({ job_id: jobId, after: z.string().max(32).optional() }),
  output: jobState,
});

/** Every tool this Signet server offers. Adding a tool: a contract here and a handler. */
export const tools = contractSet(
  serverIdentity,
  batchSum,
  startLongTask,
  pollJob,
  cancelJob,
  watchJob,
);
export type Tools = typeof tools;

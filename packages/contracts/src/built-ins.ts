import { JOB_STATUSES, PROTOCOL_VERSION } from '@signet/protocol';
import { z } from 'zod';
import type {
  JobControlContract,
  JobControlOperation,
  ObjectSchema,
  ToolContract,
} from './define.ts';
import { manifestSchema } from './manifest.ts';

// The tools every Signet server offers (DESIGN 1.6). `contractSet` adds them to every set and
// the server answers them itself, so their names are fixed: no user contract may take one.

const jsonObject = z.record(z.string(), z.unknown());
const jobId = z.string().min(1).max(128).describe('the job_id that start returned');

function jobControl<
  const TName extends string,
  TInput extends ObjectSchema,
  const TOperation extends JobControlOperation,
>(def: {
  name: TName;
  description: string;
  operation: TOperation;
  input: TInput;
  output: ObjectSchema;
}): JobControlContract<TName, TInput, TOperation> {
  return { kind: 'job-control', ...def };
}

const identityOutput = z.strictObject({
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
    server_keys: z
      .array(
        z.strictObject({
          kid: z.string(),
          alg: z.literal('ed25519'),
          public_key: z.string().describe('base64 of the 32-byte raw Ed25519 public key'),
        }),
      )
      .optional()
      .describe("the server's Ed25519 keys, which sign its answers to Ed25519 clients"),
  }),
});

export const serverIdentity: ToolContract<
  'server_identity',
  z.ZodObject<Record<string, never>, z.core.$strict>,
  typeof identityOutput
> & { builtIn: 'identity' } = {
  kind: 'tool',
  builtIn: 'identity',
  name: 'server_identity',
  description:
    'Who this server is: its id, a fingerprint of its tool contracts, and what it supports.',
  input: z.strictObject({}),
  output: identityOutput,
};

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

export const pollJob = jobControl({
  name: 'poll_job',
  operation: 'poll',
  description: "A job's status, its progress while it runs, and its output once done.",
  input: z.strictObject({ job_id: jobId }),
  output: jobState,
});

export const cancelJob = jobControl({
  name: 'cancel_job',
  operation: 'cancel',
  description: 'Cancels a queued or running job; a finished job keeps its status.',
  input: z.strictObject({ job_id: jobId }),
  output: jobState,
});

export const watchJob = jobControl({
  name: 'watch_job',
  operation: 'watch',
  description:
    "Streams a job's status and progress changes over Server-Sent Events until it finishes. " +
    '`after` resumes after the event id last received.',
  input: z.strictObject({ job_id: jobId, after: z.string().max(32).optional() }),
  output: jobState,
});

export const listTools: ToolContract<
  'list_tools',
  z.ZodObject<Record<string, never>, z.core.$strict>,
  typeof manifestSchema
> & { builtIn: 'manifest' } = {
  kind: 'tool',
  builtIn: 'manifest',
  name: 'list_tools',
  description:
    "This server's tool manifest: every tool's name, kind, description and JSON Schemas. Its " +
    "sha256 (of the JCS form) is server_identity's fingerprint.",
  input: z.strictObject({}),
  output: manifestSchema,
};

/** The built-in tools, in the order every contract set lists them first. */
export const BUILT_IN_CONTRACTS = [
  serverIdentity,
  listTools,
  pollJob,
  cancelJob,
  watchJob,
] as const;
export type BuiltInContract = (typeof BUILT_IN_CONTRACTS)[number];
export type BuiltInName = BuiltInContract['name'];

export function isBuiltInName(name: string): name is BuiltInName {
  return BUILT_IN_CONTRACTS.some((contract) => contract.name === name);
}

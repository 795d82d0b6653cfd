// Type-level tests: the router type that a client infers each tool's types from.
import type { JobState } from '@signet/protocol';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { contractSet } from './contract-set.ts';
import { defineJob, defineTool } from './define.ts';
import type { JobTicket, SignetRouter } from './router-type.ts';

const tools = contractSet(
  defineTool({
    name: 'word_count',
    description: 'Counts words.',
    input: z.strictObject({ text: z.string(), language: z.string().default('en') }),
    output: z.strictObject({ words: z.int() }),
  }),
  defineJob({
    name: 'shout',
    description: 'Upper-cases a text.',
    input: z.strictObject({ text: z.string() }),
    output: z.strictObject({ loud: z.string(), at: z.iso.datetime() }),
  }),
);
type Router = SignetRouter<typeof tools>;
type Inputs = inferRouterInputs<Router>;
type Outputs = inferRouterOutputs<Router>;

describe('SignetRouter<typeof tools>', () => {
  it("takes each tool's input type (before defaults) and gives its output type", () => {
    expectTypeOf<Inputs['word_count']>().toEqualTypeOf<{ text: string; language?: string }>();
    expectTypeOf<Outputs['word_count']>().toEqualTypeOf<{ words: number }>();
  });

  it("answers a job's start with a ticket that carries the job's output type", () => {
    expectTypeOf<Inputs['shout']>().toEqualTypeOf<{ text: string }>();
    expectTypeOf<Outputs['shout']>().toEqualTypeOf<JobTicket<{ loud: string; at: string }>>();
  });

  it('has the built-in tools, with their own types', () => {
    expectTypeOf<Inputs['server_identity']>().toEqualTypeOf<Record<string, never>>();
    expectTypeOf<Outputs['server_identity']['capabilities']['tools']>().toEqualTypeOf<string[]>();
    expectTypeOf<Inputs['poll_job']>().toEqualTypeOf<{ job_id: string }>();
    expectTypeOf<Outputs['poll_job']>().toEqualTypeOf<JobState>();
    expectTypeOf<Inputs['watch_job']>().toEqualTypeOf<{ job_id: string; after?: string }>();
  });

  it('has no procedure for a tool that is not in the set', () => {
    // @ts-expect-error there is no tool `word_cont`
    expectTypeOf<Inputs['word_cont']>().toBeUnknown();
  });
});

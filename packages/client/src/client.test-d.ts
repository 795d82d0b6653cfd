// Type-level tests: what an agent writing against the typed client gets from the contracts.
import { contractSet, defineJob, defineTool, type SignetRouter } from '@signet/contracts';
import type { JobState } from '@signet/protocol';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createSignetClient } from './client.ts';
import { type JobHandle, jobHandle } from './jobs.ts';

const tools = contractSet(
  defineTool({
    name: 'batch_sum',
    description: 'Adds numbers.',
    input: z.strictObject({ numbers: z.array(z.number()) }),
    output: z.strictObject({ count: z.int(), total: z.number() }),
  }),
  defineJob({
    name: 'shout',
    description: 'Upper-cases a text.',
    input: z.strictObject({ text: z.string(), times: z.int().optional() }),
    output: z.strictObject({ loud: z.string(), letters: z.array(z.string()) }),
  }),
);

const client = createSignetClient<SignetRouter<typeof tools>>({
  url: 'http://127.0.0.1:8787',
  serverId: 'mcp-server-001',
  clientId: 'client-001',
  key: { kid: 'k1', secret: 'x'.repeat(32) },
});

describe('the typed Signet client', () => {
  it('batch_sum takes { numbers: number[] } and resolves to { count, total }', () => {
    expectTypeOf(client.batch_sum.mutate).parameter(0).toEqualTypeOf<{ numbers: number[] }>();
    expectTypeOf(client.batch_sum.mutate).returns.resolves.toEqualTypeOf<{
      count: number;
      total: number;
    }>();
  });

  it('refuses arguments that do not match the contract', () => {
    // @ts-expect-error numbers must be numbers
    void client.batch_sum.mutate({ numbers: ['a'] });
    // @ts-expect-error there is no `nums`
    void client.batch_sum.mutate({ nums: [1] });
    // @ts-expect-error text is required
    void client.shout.mutate({ times: 2 });
    // @ts-expect-error there is no tool `batch_product`
    void client.batch_product;
  });

  it('server_identity resolves to the identity contract', async () => {
    const identity = await client.server_identity.mutate({});
    expectTypeOf(identity.server_id).toEqualTypeOf<string>();
    expectTypeOf(identity.capabilities.tools).toEqualTypeOf<string[]>();
  });

  it("a job handle's result has the job's own output type", async () => {
    const ticket = await client.shout.mutate({ text: 'hi' });
    expectTypeOf(ticket.job_id).toEqualTypeOf<string>();
    const handle = jobHandle(client, ticket);
    type Shouted = { loud: string; letters: string[] };
    expectTypeOf(handle).toEqualTypeOf<JobHandle<Shouted>>();
    expectTypeOf(handle.result()).resolves.toEqualTypeOf<Shouted>();
    const state = await handle.poll();
    if (state.status === 'done') expectTypeOf(state.output).toEqualTypeOf<Shouted>();
  });

  it('poll_job and cancel_job resolve to a JobState', () => {
    expectTypeOf(client.poll_job.mutate).parameter(0).toEqualTypeOf<{ job_id: string }>();
    expectTypeOf(client.poll_job.mutate).returns.resolves.toEqualTypeOf<JobState>();
    expectTypeOf(client.cancel_job.mutate).returns.resolves.toEqualTypeOf<JobState>();
  });
});

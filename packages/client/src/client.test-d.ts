// Type-level tests: what an agent writing against the typed client gets from the contracts.
import type { Tools } from '@signet/contracts';
import type { JobState } from '@signet/protocol';
import type { SignetRouter } from '@signet/server';
import { describe, expectTypeOf, it } from 'vitest';
import { createSignetClient } from './client.ts';
import { type JobHandle, jobHandle } from './jobs.ts';

const client = createSignetClient<SignetRouter<Tools>>({
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
    // @ts-expect-error seconds is required
    void client.start_long_task.mutate({ payload: {} });
  });

  it('server_identity resolves to the identity contract', async () => {
    const identity = await client.server_identity.mutate({});
    expectTypeOf(identity.server_id).toEqualTypeOf<string>();
    expectTypeOf(identity.capabilities.tools).toEqualTypeOf<string[]>();
  });

  it("a job handle's result has the job's output type", async () => {
    const ticket = await client.start_long_task.mutate({ seconds: 1, payload: { a: 1 } });
    expectTypeOf(ticket.job_id).toEqualTypeOf<string>();
    const handle = jobHandle(client, ticket);
    expectTypeOf(handle).toEqualTypeOf<JobHandle<Record<string, unknown>>>();
    expectTypeOf(handle.result()).resolves.toEqualTypeOf<Record<string, unknown>>();
  });

  it('poll_job and cancel_job resolve to a JobState', () => {
    expectTypeOf(client.poll_job.mutate).parameter(0).toEqualTypeOf<{ job_id: string }>();
    expectTypeOf(client.poll_job.mutate).returns.resolves.toEqualTypeOf<JobState>();
    expectTypeOf(client.cancel_job.mutate).returns.resolves.toEqualTypeOf<JobState>();
  });
});

// Type-level tests: the bridge's tool table keeps each contract's input and output types.
import type { Client } from '@modelcontextprotocol/client';
import { contractSet, defineJob, defineTool } from '@signet/contracts';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type BridgeCallResult, type BridgeToolTable, typedBridge } from './typed-calls.ts';

const tools = contractSet(
  defineTool({
    name: 'batch_sum',
    description: 'Adds numbers.',
    input: z.strictObject({ numbers: z.array(z.number()), round: z.boolean().default(false) }),
    output: z.strictObject({ count: z.int(), total: z.number() }),
  }),
  defineJob({
    name: 'shout',
    description: 'Upper-cases a text.',
    input: z.strictObject({ text: z.string() }),
    output: z.strictObject({ loud: z.string() }),
  }),
);
type Table = BridgeToolTable<typeof tools>;

describe('BridgeToolTable', () => {
  it('has the tools and jobs, not the built-ins', () => {
    expectTypeOf<keyof Table>().toEqualTypeOf<'batch_sum' | 'shout'>();
  });

  it("types each tool's arguments (as sent) and structuredContent (a job's output)", () => {
    expectTypeOf<Table['batch_sum']['arguments']>().toEqualTypeOf<{
      numbers: number[];
      round?: boolean;
    }>();
    expectTypeOf<Table['batch_sum']['structuredContent']>().toEqualTypeOf<{
      count: number;
      total: number;
    }>();
    expectTypeOf<Table['shout']['structuredContent']>().toEqualTypeOf<{ loud: string }>();
  });
});

describe('typedBridge', () => {
  const client = {} as Client;
  const bridge = typedBridge<typeof tools, Parameters<Client['callTool']>[1]>(client);

  it("resolves to the tool's output", () => {
    expectTypeOf(bridge.call('shout', { text: 'hi' })).resolves.toEqualTypeOf<
      BridgeCallResult<{ loud: string }>
    >();
  });

  it('refuses a wrong tool or argument', () => {
    // @ts-expect-error numbers must be numbers
    void bridge.call('batch_sum', { numbers: ['1'] });
    // @ts-expect-error poll_job is built in, not served
    void bridge.call('poll_job', { job_id: 'x' });
  });
});

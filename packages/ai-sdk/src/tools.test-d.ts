// Type-level tests: what a model's tools keep of the contracts they come from.
import { createSignetClient, type SignetRouter } from '@signet/client';
import { contractSet, defineJob, defineTool } from '@signet/contracts';
import { generateText, type InferToolInput, type InferToolOutput, type LanguageModel } from 'ai';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type SignetTools, signetTools } from './tools.ts';

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
const aiTools = signetTools(client, tools);

type Sum = { count: number; total: number };
type Shouted = { loud: string; letters: string[] };

describe('signetTools', () => {
  it('is keyed by the user tools and jobs, without the built-in tools', () => {
    expectTypeOf(aiTools).toEqualTypeOf<SignetTools<typeof tools>>();
    expectTypeOf<keyof typeof aiTools>().toEqualTypeOf<'batch_sum' | 'shout'>();
    // @ts-expect-error the built-in tools are not the model's
    void aiTools.server_identity;
    // @ts-expect-error nor is job control
    void aiTools.poll_job;
  });

  it("keeps a tool's input and output types", () => {
    expectTypeOf<InferToolInput<typeof aiTools.batch_sum>>().toEqualTypeOf<{
      numbers: number[];
    }>();
    expectTypeOf<InferToolOutput<typeof aiTools.batch_sum>>().toEqualTypeOf<Sum>();
  });

  it("gives a job tool the job's output type, not its ticket's", () => {
    expectTypeOf<InferToolInput<typeof aiTools.shout>>().toEqualTypeOf<{
      text: string;
      times?: number | undefined;
    }>();
    expectTypeOf<InferToolOutput<typeof aiTools.shout>>().toEqualTypeOf<Shouted>();
  });

  it('refuses a wrong input to execute', () => {
    const options = { toolCallId: 'call-1', messages: [] };
    // @ts-expect-error numbers must be numbers
    void aiTools.batch_sum.execute?.({ numbers: ['a'] }, options);
    // @ts-expect-error text is required
    void aiTools.shout.execute?.({ times: 2 }, options);
  });

  it('refuses a client of another contract set', () => {
    const other = contractSet(
      defineTool({
        name: 'batch_sum',
        description: 'Adds strings.',
        input: z.strictObject({ numbers: z.array(z.string()) }),
        output: z.strictObject({ count: z.int(), total: z.number() }),
      }),
    );
    const otherClient = createSignetClient<SignetRouter<typeof other>>({
      url: 'http://127.0.0.1:8787',
      serverId: 'mcp-server-001',
      clientId: 'client-001',
      key: { kid: 'k1', secret: 'x'.repeat(32) },
    });
    // @ts-expect-error this client's batch_sum takes strings, and it has no shout
    signetTools(otherClient, tools);
  });

  it("types generateText's tool results per tool", async () => {
    const model = null as unknown as LanguageModel;
    const result = await generateText({ model, tools: aiTools, prompt: 'sum 1 and 2' });
    for (const part of result.staticToolResults) {
      if (part.toolName === 'batch_sum') {
        expectTypeOf(part.input).toEqualTypeOf<{ numbers: number[] }>();
        expectTypeOf(part.output).toEqualTypeOf<Sum>();
      } else {
        expectTypeOf(part.toolName).toEqualTypeOf<'shout'>();
        expectTypeOf(part.output).toEqualTypeOf<Shouted>();
      }
    }
  });
});

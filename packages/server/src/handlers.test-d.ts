// Type-level tests: what `Handlers<>` asks of a server's author.
import { contractSet, defineJob, defineTool } from '@signet/contracts';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { Handlers, ToolCallContext } from './handlers.ts';
import type { JobContext } from './jobs/types.ts';

const tools = contractSet(
  defineTool({
    name: 'word_count',
    description: 'Counts words.',
    input: z.strictObject({ text: z.string() }),
    output: z.strictObject({ words: z.int() }),
  }),
  defineJob({
    name: 'shout',
    description: 'Upper-cases a text.',
    input: z.strictObject({ text: z.string() }),
    output: z.strictObject({ loud: z.string() }),
  }),
);

const wordCount = ({ text }: { text: string }) => ({ words: text.length });
const shout = async ({ text }: { text: string }) => ({ loud: text.toUpperCase() });

describe('Handlers<typeof tools>', () => {
  it('asks for one handler per tool and job, and none for the built-in tools', () => {
    expectTypeOf<keyof Handlers<typeof tools>>().toEqualTypeOf<'word_count' | 'shout'>();
    const handlers: Handlers<typeof tools> = { word_count: wordCount, shout };
    void handlers;
  });

  it("types a tool handler's args, context and output from its contract", () => {
    expectTypeOf<Handlers<typeof tools>['word_count']>().parameters.toEqualTypeOf<
      [{ text: string }, ToolCallContext]
    >();
    expectTypeOf<Handlers<typeof tools>['shout']>().parameters.toEqualTypeOf<
      [{ text: string }, JobContext]
    >();
  });

  it('refuses a missing handler', () => {
    // @ts-expect-error shout has no handler
    const handlers: Handlers<typeof tools> = { word_count: wordCount };
    void handlers;
  });

  it('refuses a mistyped handler', () => {
    const handlers: Handlers<typeof tools> = {
      // @ts-expect-error words must be a number
      word_count: () => ({ words: 'three' }),
      shout,
    };
    const wrongArgs: Handlers<typeof tools> = {
      // @ts-expect-error the args are { text: string }
      word_count: ({ text }: { text: number }) => ({ words: text }),
      shout,
    };
    void handlers;
    void wrongArgs;
  });

  it('refuses a handler for a job-control tool or server_identity', () => {
    const poll: Handlers<typeof tools> = {
      word_count: wordCount,
      shout,
      // @ts-expect-error poll_job is answered by the server
      poll_job: () => ({}),
    };
    const identity: Handlers<typeof tools> = {
      word_count: wordCount,
      shout,
      // @ts-expect-error server_identity is answered by the server
      server_identity: () => ({}),
    };
    void poll;
    void identity;
  });
});

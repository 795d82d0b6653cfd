// Type-level tests: what `contractSet` gives and refuses.
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { cancelJob, listTools, pollJob, serverIdentity, watchJob } from './built-ins.ts';
import { contractSet } from './contract-set.ts';
import { defineJob, defineTool } from './define.ts';

const wordCount = defineTool({
  name: 'word_count',
  description: 'Counts words.',
  input: z.strictObject({ text: z.string() }),
  output: z.strictObject({ words: z.int() }),
});
const shout = defineJob({
  name: 'shout',
  description: 'Upper-cases a text.',
  input: z.strictObject({ text: z.string() }),
  output: z.strictObject({ loud: z.string() }),
});

describe('contractSet', () => {
  it("is keyed by the tools' names, built-ins included, each with its own contract type", () => {
    const tools = contractSet(wordCount, shout);
    expectTypeOf(tools).toEqualTypeOf<{
      readonly server_identity: typeof serverIdentity;
      readonly list_tools: typeof listTools;
      readonly poll_job: typeof pollJob;
      readonly cancel_job: typeof cancelJob;
      readonly watch_job: typeof watchJob;
      readonly word_count: typeof wordCount;
      readonly shout: typeof shout;
    }>();
  });

  it('refuses two tools with one name', () => {
    const other = defineJob({ ...shout, name: 'word_count' });
    // @ts-expect-error two contracts are named "word_count"
    contractSet(wordCount, shout, other);
  });

  it("refuses a tool named like a built-in one, or a built-in's own contract", () => {
    const impostor = defineTool({ ...wordCount, name: 'watch_job' });
    // @ts-expect-error watch_job is a built-in tool
    contractSet(impostor);
    // @ts-expect-error job control is not a user contract
    contractSet(wordCount, {} as typeof pollJob);
  });
});

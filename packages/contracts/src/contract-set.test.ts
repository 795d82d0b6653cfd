import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cancelJob, pollJob, serverIdentity, watchJob } from './built-ins.ts';
import { contractSet } from './contract-set.ts';
import { defineJob, defineTool } from './define.ts';

const wordCount = defineTool({
  name: 'word_count',
  description: 'Counts the words of a text.',
  input: z.strictObject({ text: z.string() }),
  output: z.strictObject({ words: z.int() }),
});

const shout = defineJob({
  name: 'shout',
  description: 'Upper-cases a text, slowly.',
  input: z.strictObject({ text: z.string() }),
  output: z.strictObject({ loud: z.string() }),
});

describe('contractSet', () => {
  it("adds the built-in tools to a user's tools and jobs", () => {
    const tools = contractSet(wordCount, shout);
    expect(Object.keys(tools)).toEqual([
      'server_identity',
      'list_tools',
      'poll_job',
      'cancel_job',
      'watch_job',
      'word_count',
      'shout',
    ]);
    expect(tools.poll_job).toBe(pollJob);
    expect(tools.cancel_job).toBe(cancelJob);
    expect(tools.watch_job).toBe(watchJob);
    expect(tools.server_identity).toBe(serverIdentity);
    expect(tools.shout).toBe(shout);
  });

  it('makes a set with no user tools at all: the built-ins alone', () => {
    expect(Object.keys(contractSet())).toEqual([
      'server_identity',
      'list_tools',
      'poll_job',
      'cancel_job',
      'watch_job',
    ]);
  });

  it('refuses two contracts with one name', () => {
    const again = defineTool({ ...wordCount, description: 'another' });
    // @ts-expect-error two contracts are named "word_count"
    expect(() => contractSet(wordCount, again)).toThrow('two contracts are named "word_count"');
  });

  it('cannot rename or replace a built-in tool: a contract with its name is refused', () => {
    for (const name of [
      'poll_job',
      'cancel_job',
      'watch_job',
      'server_identity',
      'list_tools',
    ] as const) {
      const impostor = defineTool({
        name,
        description: 'mine',
        input: z.strictObject({ job_id: z.string() }),
        output: z.strictObject({}),
      });
      // @ts-expect-error a built-in tool's name is taken
      expect(() => contractSet(impostor)).toThrow(`"${name}" is a built-in tool`);
    }
  });

  it('refuses a built-in contract passed again, or anything not made by defineTool/defineJob', () => {
    // @ts-expect-error job control is not a user contract
    expect(() => contractSet(pollJob)).toThrow('is a built-in tool');
    const renamed = { ...serverIdentity, name: 'who_are_you' as const };
    // A copy of server_identity under another name would be answered by the server: refused.
    expect(() => contractSet(renamed)).toThrow('"who_are_you" is not a tool or a job');
  });

  it('returns a frozen set', () => {
    expect(Object.isFrozen(contractSet(wordCount))).toBe(true);
  });
});

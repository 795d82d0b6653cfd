// A job's output is bounded (issue 21, V2, V3): one larger than the limit, in bytes of its UTF-8
// JSON text, ends the job as TOOL_FAILED, never stored; one that is not JSON fails it too.
import { randomUUID } from 'node:crypto';
import { defineJob } from '@signet/contracts';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '../stores/memory.ts';
import { eventually } from '../testing/processes.ts';
import { DEFAULT_MAX_OUTPUT_BYTES } from './lifecycle.ts';
import { LocalJobEngine } from './local-engine.ts';
import type { JobDefinition } from './types.ts';

const echo = defineJob({
  name: 'echo',
  description: 'Returns `text` in an object, or an object that is not JSON.',
  input: z.strictObject({ text: z.string(), cyclic: z.boolean() }),
  output: z.record(z.string(), z.unknown()),
});

const definitions = new Map<string, JobDefinition>([
  [
    'echo',
    {
      contract: echo,
      handler: async (args) => {
        if (args.cyclic) {
          const cycle: Record<string, unknown> = {};
          cycle.self = cycle;
          return cycle;
        }
        return { t: args.text };
      },
    },
  ],
]);

const engines: LocalJobEngine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close({ graceMs: 0 });
});

/** Runs echo on an engine limited to `max` bytes of output (null: the default); the job's end. */
async function runEcho(text: string, cyclic = false, max: number | null = 100) {
  const store = new MemoryStore();
  const engine = new LocalJobEngine({
    store,
    definitions,
    logger: pino({ level: 'silent' }),
    ...(max === null ? {} : { maxOutputBytes: max }),
  });
  engines.push(engine);
  const args = { text, cyclic };
  const { jobId } = await engine.start({
    clientId: 'alice',
    requestId: randomUUID(),
    tool: 'echo',
    args,
    argsHash: JSON.stringify(args),
  });
  const end = await eventually(async () => {
    const state = await engine.get('alice', jobId);
    return state?.status === 'done' || state?.status === 'error' ? state : undefined;
  });
  return { end, stored: store.get(jobId)! };
}

describe('the job output limit', () => {
  // {"t":"…"} is 8 bytes more than the text.
  it('keeps an output of exactly the limit', async () => {
    const { end } = await runEcho('x'.repeat(92));
    expect(end).toMatchObject({ status: 'done', output: { t: 'x'.repeat(92) } });
  });

  it('fails a job whose output is one byte more, and stores none of it', async () => {
    const { end, stored } = await runEcho('x'.repeat(93));
    expect(end).toEqual({
      job_id: stored.id,
      status: 'error',
      error: { code: 'TOOL_FAILED', message: 'the job output exceeded 100 bytes' },
      seq: 2,
    });
    expect(stored.output).toBeNull();
  });

  it('counts UTF-8 bytes, not characters', async () => {
    // 46 characters, 92 bytes: fits; one more is over.
    expect((await runEcho('é'.repeat(46))).end.status).toBe('done');
    expect((await runEcho(`${'é'.repeat(46)}x`)).end.status).toBe('error');
  });

  it('fails a job whose output is not JSON', async () => {
    const { end } = await runEcho('', true);
    expect(end).toMatchObject({
      status: 'error',
      error: { code: 'TOOL_FAILED', message: 'the job produced an invalid output' },
    });
  });

  it('is 1 MiB, as the body limit, by default', async () => {
    expect(DEFAULT_MAX_OUTPUT_BYTES).toBe(1024 * 1024);
    const fits = 'x'.repeat(DEFAULT_MAX_OUTPUT_BYTES - 8);
    expect((await runEcho(fits, false, null)).end.status).toBe('done');
    expect((await runEcho(`${fits}x`, false, null)).end.status).toBe('error');
  });
});

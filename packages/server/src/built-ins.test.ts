// The built-in tools through real HTTP and the real client, on a contract set that lists none of
// them: the server answers server_identity and job control for any set a user writes.

import { createSignetClient, JobFailedError, jobHandle, signetReason } from '@signet/client';
import {
  buildManifest,
  contractSet,
  defineJob,
  defineTool,
  manifestFingerprint,
  type SignetRouter,
} from '@signet/contracts';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Handlers } from './handlers.ts';
import { generateSecret, Keyring } from './keyring.ts';
import { createSignetRouter } from './router.ts';
import { type RunningSignetServer, startSignetServer } from './server.ts';
import { MemoryStore } from './stores/memory.ts';

const wordCount = defineTool({
  name: 'word_count',
  description: 'Counts the words of a text.',
  input: z.strictObject({ text: z.string() }),
  output: z.strictObject({ words: z.int() }),
});

const shout = defineJob({
  name: 'shout',
  description: 'Upper-cases a text; waits for a cancel when told to.',
  input: z.strictObject({ text: z.string(), hold: z.boolean().optional() }),
  output: z.strictObject({ loud: z.string() }),
});

const tools = contractSet(wordCount, shout);

const handlers: Handlers<typeof tools> = {
  word_count: ({ text }) => ({ words: text.split(/\s+/).filter(Boolean).length }),
  shout: async ({ text, hold }, job) => {
    job.progress({ current: 1, total: 2, message: 'shouting' });
    if (hold) {
      await new Promise((_, reject) =>
        job.signal.addEventListener('abort', () => reject(job.signal.reason), { once: true }),
      );
    }
    return { loud: text.toUpperCase() };
  },
};

const key = { kid: 'k1', secret: generateSecret() };
let server: RunningSignetServer<typeof tools>;
let client: ReturnType<typeof createSignetClient<SignetRouter<typeof tools>>>;

beforeAll(async () => {
  server = await startSignetServer({
    contracts: tools,
    handlers,
    keyring: Keyring.parse({
      server_id: 'words-1',
      clients: [{ client_id: 'agent-1', keys: [key] }],
    }),
    store: new MemoryStore(),
    logger: pino({ level: 'silent' }),
    maxBodyBytes: 65_536,
  });
  client = createSignetClient<SignetRouter<typeof tools>>({
    url: server.url,
    serverId: 'words-1',
    clientId: 'agent-1',
    key,
  });
});

afterAll(() => server?.close({ graceMs: 0 }));

describe('the built-in tools on a set of one tool and one job', () => {
  it("server_identity names the set's tools, its manifest's fingerprint and the limits", async () => {
    const identity = await client.server_identity.mutate({});
    expect(identity).toEqual({
      server_id: 'words-1',
      fingerprint: manifestFingerprint(buildManifest(tools)),
      capabilities: {
        protocol: 'mcp/0.1',
        tools: [
          'server_identity',
          'list_tools',
          'poll_job',
          'cancel_job',
          'watch_job',
          'word_count',
          'shout',
        ],
        limits: { max_body_bytes: 65_536, max_depth: 64, freshness_window_ms: 300_000 },
      },
    });
  });

  it("list_tools answers the set's manifest, whose fingerprint is server_identity's", async () => {
    const manifest = await client.list_tools.mutate({});
    expect(manifest).toEqual(buildManifest(tools));
    const { fingerprint } = await client.server_identity.mutate({});
    expect(manifestFingerprint(manifest)).toBe(fingerprint);
    const shoutTool = manifest.tools.find((tool) => tool.name === 'shout');
    expect(shoutTool).toMatchObject({ kind: 'job', retryable: false });
    expect(shoutTool?.input_schema).toMatchObject({ required: ['text'] });
    expect(manifest.tools.filter((tool) => tool.built_in).map((tool) => tool.name)).toEqual([
      'server_identity',
      'list_tools',
      'poll_job',
      'cancel_job',
      'watch_job',
    ]);
  });

  it("a job handle gets the job's output, watching and polling", async () => {
    expect(await client.word_count.mutate({ text: 'one two  three' })).toEqual({ words: 3 });
    const watched = jobHandle(client, await client.shout.mutate({ text: 'hi' }));
    const progress: unknown[] = [];
    expect(await watched.result({ onProgress: (p) => progress.push(p) })).toEqual({ loud: 'HI' });
    const polled = jobHandle(client, await client.shout.mutate({ text: 'ho' }));
    expect(await polled.result({ watch: false, pollMs: 10 })).toEqual({ loud: 'HO' });
    expect(await polled.poll()).toEqual({
      job_id: polled.id,
      status: 'done',
      output: { loud: 'HO' },
    });
  });

  it('cancel_job stops a running job, and its result says so', async () => {
    const job = jobHandle(client, await client.shout.mutate({ text: 'x', hold: true }));
    for await (const state of job.watch()) if (state.status === 'running') break;
    expect((await job.cancel()).status).toBe('cancelled');
    const failure = await job.result().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(JobFailedError);
  });

  it('poll_job of an unknown job is JOB_NOT_FOUND', async () => {
    const failure = await client.poll_job.mutate({ job_id: 'nope' }).catch((e: unknown) => e);
    expect(signetReason(failure)).toBe('JOB_NOT_FOUND');
  });
});

describe('handlers for the built-in tools', () => {
  it('a handler for a built-in tool, for no tool, or a missing one stops the router', () => {
    const extra = { ...handlers, poll_job: () => ({}) };
    expect(() => createSignetRouter(tools, extra as typeof handlers)).toThrow(
      'a handler for "poll_job", which the server answers itself',
    );
    const stray = { ...handlers, word_cont: () => ({}) };
    expect(() => createSignetRouter(tools, stray as typeof handlers)).toThrow(
      'a handler for "word_cont", which is not in the contracts',
    );
    const { shout: _, ...missing } = handlers;
    expect(() => createSignetRouter(tools, missing as typeof handlers)).toThrow(
      'no handler for "shout"',
    );
  });
});

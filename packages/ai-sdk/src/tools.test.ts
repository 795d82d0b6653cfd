// The AI SDK's own mock model drives generateText against the example app over real HTTP: every
// tool call the model asks for is signed, served and verified, and its result (or refusal) is
// what the model reads in its next prompt.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient, jobHandle, type SignetRouter } from '@signet/client';
import { contractSet, defineTool } from '@signet/contracts';
import { generateKeyringFile } from '@signet/server';
import { type AppServer, loadConfig, startApp } from '@signet/server-app';
import { tools } from '@signet/server-app/contracts';
import { generateText, stepCountIs } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type SignetProgressEvent, SignetToolError, signetTools } from './tools.ts';

type GenerateResult = Awaited<ReturnType<MockLanguageModelV3['doGenerate']>>;
type Prompt = MockLanguageModelV3['doGenerateCalls'][number]['prompt'];

const usage: GenerateResult['usage'] = {
  inputTokens: { total: 1, noCache: 1, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 1, text: 1, reasoning: undefined },
};

/** A model turn that asks for tool calls (`[toolName, input]`, ids call-1, call-2, …). */
let callIds = 0;
function callsTools(...calls: Array<[string, unknown]>): GenerateResult {
  return {
    content: calls.map(([toolName, input]) => ({
      type: 'tool-call' as const,
      toolCallId: `call-${++callIds}`,
      toolName,
      input: JSON.stringify(input),
    })),
    finishReason: { unified: 'tool-calls', raw: undefined },
    usage,
    warnings: [],
  };
}
function says(text: string): GenerateResult {
  return {
    content: [{ type: 'text', text }],
    finishReason: { unified: 'stop', raw: undefined },
    usage,
    warnings: [],
  };
}

/** The tool results (and tool errors) the model was shown in a prompt, by tool name. */
function toolOutputs(prompt: Prompt): Record<string, unknown> {
  const seen: Record<string, unknown> = {};
  for (const message of prompt) {
    if (message.role !== 'tool') continue;
    for (const part of message.content) {
      if (part.type === 'tool-result') seen[part.toolName] = part.output;
    }
  }
  return seen;
}

const SERVER_ID = 'mcp-server-001';
const keyring = generateKeyringFile({ serverId: SERVER_ID, clientIds: ['agent', 'identity-only'] });
keyring.clients[1]!.tools = ['server_identity'];

let server: AppServer;
let dir: string;

function clientFor(index: number) {
  const entry = keyring.clients[index]!;
  return createSignetClient<SignetRouter<typeof tools>>({
    url: server.url,
    serverId: SERVER_ID,
    clientId: entry.client_id,
    key: entry.keys[0]!,
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'signet-ai-sdk-'));
  writeFileSync(join(dir, 'keyring.json'), JSON.stringify(keyring));
  server = await startApp(
    loadConfig({
      SIGNET_PORT: '0',
      SIGNET_STORE: 'memory:',
      SIGNET_AUDIT: 'off',
      SIGNET_KEYRING: join(dir, 'keyring.json'),
    }),
    pino({ level: 'silent' }),
  );
});
afterAll(async () => {
  await server?.close({ graceMs: 0 });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('signetTools', () => {
  it('gives the model one tool per user tool and job, with the contract', () => {
    const aiTools = signetTools(clientFor(0), tools);
    expect(Object.keys(aiTools).sort()).toEqual(['batch_sum', 'start_long_task']);
    expect(aiTools.batch_sum.description).toBe(tools.batch_sum.description);
    expect(aiTools.batch_sum.inputSchema).toBe(tools.batch_sum.input);
    expect(aiTools.batch_sum.outputSchema).toBe(tools.batch_sum.output);
    expect(aiTools.start_long_task.outputSchema).toBe(tools.start_long_task.output);
  });

  it('runs a tool, then a job, and shows the model their outputs', async () => {
    const progress: SignetProgressEvent[] = [];
    const model = new MockLanguageModelV3({
      doGenerate: [
        callsTools(['batch_sum', { numbers: [1, 2, 3.5] }]),
        callsTools(['start_long_task', { seconds: 1, payload: { report: 'q3', rows: 42 } }]),
        says('The total is 6.5 and the report is ready.'),
      ],
    });
    const result = await generateText({
      model,
      tools: signetTools(clientFor(0), tools, { onProgress: (event) => progress.push(event) }),
      prompt: 'Sum 1, 2 and 3.5, then run the report.',
      stopWhen: stepCountIs(5),
    });

    expect(result.text).toBe('The total is 6.5 and the report is ready.');
    expect(model.doGenerateCalls).toHaveLength(3);
    // What the model read: the signed tool's output after step 1, the job's output after step 2.
    const [first, second, third] = model.doGenerateCalls.map((call) => toolOutputs(call.prompt));
    expect(first).toEqual({});
    expect(second).toEqual({ batch_sum: { type: 'json', value: { count: 3, total: 6.5 } } });
    expect(third).toEqual({
      batch_sum: { type: 'json', value: { count: 3, total: 6.5 } },
      start_long_task: { type: 'json', value: { report: 'q3', rows: 42 } },
    });
    // The typed results, as the application sees them.
    const [sum, job] = result.steps.flatMap((step) => step.staticToolResults);
    expect(sum?.toolName === 'batch_sum' && sum.output.total).toBe(6.5);
    expect(job?.toolName === 'start_long_task' && job.output).toEqual({ report: 'q3', rows: 42 });
    // The job's progress came out of onProgress, tagged with its tool call and job.
    expect(progress.length).toBeGreaterThanOrEqual(1);
    for (const event of progress) {
      expect(event).toMatchObject({ toolName: 'start_long_task', toolCallId: job?.toolCallId });
      expect(event.progress.total).toBe(1);
    }
  });

  it('shows the model a refusal as an error naming its reason code, not a crash', async () => {
    // A client whose contracts drifted from the server's: this batch_sum takes an empty list,
    // so the call is signed and sent, and the server refuses the arguments.
    const drifted = contractSet(
      defineTool({
        name: 'batch_sum',
        description: tools.batch_sum.description,
        input: z.strictObject({ numbers: z.array(z.number()) }),
        output: tools.batch_sum.output,
      }),
    );
    const driftedClient = createSignetClient<SignetRouter<typeof drifted>>({
      url: server.url,
      serverId: SERVER_ID,
      clientId: 'agent',
      key: keyring.clients[0]!.keys[0]!,
    });
    const cases = [
      {
        aiTools: signetTools(driftedClient, drifted),
        numbers: [],
        reason: 'INVALID_ARGS',
        shown:
          'batch_sum failed: INVALID_ARGS (numbers: Too small: expected array to have >=1 items)',
      },
      {
        // This client's keyring entry allows server_identity only.
        aiTools: signetTools(clientFor(1), tools),
        numbers: [1, 2],
        reason: 'TOOL_NOT_ALLOWED',
        shown: 'batch_sum failed: TOOL_NOT_ALLOWED (this client may not call batch_sum)',
      },
    ];
    for (const { aiTools, numbers, reason, shown } of cases) {
      const model = new MockLanguageModelV3({
        doGenerate: [callsTools(['batch_sum', { numbers }]), says('I could not sum that.')],
      });
      const result = await generateText({
        model,
        tools: aiTools,
        prompt: 'Sum nothing.',
        stopWhen: stepCountIs(3),
      });
      expect(result.text).toBe('I could not sum that.');
      // What the model reads in its next prompt: the tool call's error, as text.
      expect(toolOutputs(model.doGenerateCalls[1]!.prompt)).toEqual({
        batch_sum: { type: 'error-text', value: shown },
      });
      // What the application sees: a tool-error part carrying the SignetToolError.
      const [error] = result.steps[0]!.content.filter((part) => part.type === 'tool-error');
      expect(error?.error).toBeInstanceOf(SignetToolError);
      expect(error?.error).toMatchObject({ toolName: 'batch_sum', reason });
    }
  });

  it('lets the SDK refuse arguments that break the contract before anything is signed', async () => {
    const model = new MockLanguageModelV3({
      doGenerate: [callsTools(['batch_sum', { numbers: [] }]), says('Nothing to sum.')],
    });
    await generateText({
      model,
      tools: signetTools(clientFor(0), tools),
      prompt: 'Sum nothing.',
      stopWhen: stepCountIs(3),
    });
    const shown = toolOutputs(model.doGenerateCalls[1]!.prompt).batch_sum as {
      type: string;
      value: string;
    };
    expect(shown.type).toBe('error-text');
    expect(shown.value).toContain('Invalid input for tool batch_sum');
    expect(shown.value).toContain('too_small');
  });

  it("shows the model a job that ended without output as the job's reason code", async () => {
    const client = clientFor(0);
    // The job is cancelled by someone else while the model's tool call waits for it.
    const cancels: Array<Promise<unknown>> = [];
    const model = new MockLanguageModelV3({
      doGenerate: [
        callsTools(['start_long_task', { seconds: 20, payload: {} }]),
        says('The task was cancelled.'),
      ],
    });
    await generateText({
      model,
      tools: signetTools(client, tools, {
        onProgress: ({ jobId }) => cancels.push(client.cancel_job.mutate({ job_id: jobId })),
      }),
      prompt: 'Run the long task.',
      stopWhen: stepCountIs(3),
    });
    await Promise.all(cancels);
    const shown = toolOutputs(model.doGenerateCalls[1]!.prompt).start_long_task;
    expect(shown).toEqual({
      type: 'error-text',
      value: 'start_long_task failed: CANCELLED (the job was cancelled)',
    });
  });

  it('cancels the job when the generation is aborted', async () => {
    const client = clientFor(0);
    const abort = new AbortController();
    let jobId: string | undefined;
    const model = new MockLanguageModelV3({
      doGenerate: [
        callsTools(['start_long_task', { seconds: 20, payload: {} }]),
        says('unreachable'),
      ],
    });
    const run = generateText({
      model,
      tools: signetTools(client, tools, {
        onProgress: (event) => {
          jobId = event.jobId;
          abort.abort(new Error('the user stopped'));
        },
      }),
      prompt: 'Run the long task.',
      stopWhen: stepCountIs(3),
      abortSignal: abort.signal,
    });
    await expect(run).rejects.toThrow('the user stopped');
    expect(jobId).toBeDefined();
    expect(await jobHandle(client, { job_id: jobId! }).poll()).toEqual({
      job_id: jobId,
      status: 'cancelled',
    });
  });
});

// `pnpm mcp` over stdio, driven by the official v2 client (StdioClientTransport spawning the
// CLI as a host does), against the example Signet server in this process.
import { spawn } from 'node:child_process';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { JobFailedError } from '@signet/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { META_JOB_ID, META_REASON } from './outcome.ts';
import {
  bridgeEnv,
  CLI_ARGS,
  exitOf,
  RAW_INITIALIZE,
  REPO_ROOT,
  waitForLine,
} from './testing/bridge-process.ts';
import { jobIdOf, jobStart } from './testing/job-progress.ts';
import { startTestSignet, type TestSignet } from './testing/signet-app.ts';

/** Bounds of the slow tests: a job of a few seconds; spawning `pnpm mcp` and talking to it. */
const JOB_MS = 15_000;
const SPAWN_MS = 30_000;

let signet: TestSignet;

beforeAll(async () => {
  signet = await startTestSignet();
});
afterAll(() => signet?.close());

/** A v2 client connected to a fresh `pnpm mcp` over stdio. */
async function connect(credentialsPath: string) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: CLI_ARGS,
    cwd: REPO_ROOT,
    env: bridgeEnv({ SIGNET_URL: signet.url, SIGNET_CREDENTIALS: credentialsPath }),
    stderr: 'pipe',
  });
  const client = new Client({ name: 'stdio-test', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/**
 * The bridge spawned as a host spawns it, spoken to in raw JSON-RPC lines: `send` writes one,
 * and the initialize handshake is already sent.
 */
function rawSession(command: string, args: readonly string[]) {
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: bridgeEnv({ SIGNET_URL: signet.url, SIGNET_CREDENTIALS: signet.credentialsPath }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = exitOf(child, 30_000);
  child.stderr.resume();
  const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
  send(RAW_INITIALIZE);
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  return { child, exited, send };
}

describe('pnpm mcp over stdio, with the v2 client', () => {
  let client: Client;

  beforeAll(async () => {
    ({ client } = await connect(signet.credentialsPath));
  }, SPAWN_MS);
  afterAll(() => client?.close());

  it("lists the server's tools and jobs with their schemas, not the built-in tools", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name).sort()).toEqual(['batch_sum', 'start_long_task']);
    const batchSum = tools.find((tool) => tool.name === 'batch_sum')!;
    expect(batchSum.description).toMatch(/adds up/i);
    expect(batchSum.inputSchema).toMatchObject({
      type: 'object',
      required: ['numbers'],
      properties: { numbers: { type: 'array', minItems: 1 } },
    });
    expect(batchSum.outputSchema).toMatchObject({
      type: 'object',
      required: ['count', 'total'],
    });
    const longTask = tools.find((tool) => tool.name === 'start_long_task')!;
    expect(longTask.inputSchema).toMatchObject({ required: ['seconds', 'payload'] });
    // A job's output schema is the job's output (here: any object), not its ticket.
    expect(longTask.outputSchema).toMatchObject({ type: 'object' });
    expect(longTask.outputSchema?.properties).toBeUndefined();
  });

  it('calls batch_sum and answers its verified output as structuredContent and JSON text', async () => {
    const result = await client.callTool({
      name: 'batch_sum',
      arguments: { numbers: [1, 2, 3.5] },
    });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toEqual({ count: 3, total: 6.5 });
    expect(result.content).toEqual([{ type: 'text', text: '{"count":3,"total":6.5}' }]);
  });

  it('answers a signed refusal as a tool result with isError that names the reason code', async () => {
    const result = await client.callTool({ name: 'batch_sum', arguments: { numbers: [] } });
    expect(result.isError).toBe(true);
    expect(result.structuredContent).toBeUndefined();
    const [content] = result.content as Array<{ type: string; text: string }>;
    expect(content?.text).toMatch(/^batch_sum was refused: INVALID_ARGS: /);
    expect(result._meta?.[META_REASON]).toBe('INVALID_ARGS');
  });

  it(
    'runs a job, sending its progress as notifications, then answers its output',
    async () => {
      const progress: Array<{ progress: number; total?: number; message?: string }> = [];
      const result = await client.callTool(
        { name: 'start_long_task', arguments: { seconds: 2, payload: { answer: 42 } } },
        { onprogress: (update) => progress.push(update) },
      );
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toEqual({ answer: 42 });
      // The handler reports 0/2 at once and 1/2 a second later; 2/2 comes with its end, and the
      // server may send the end alone.
      expect(progress.slice(0, 2).map((p) => [p.progress, p.total, p.message])).toEqual([
        [0, 2, 'started'],
        [1, 2, '1/2 s'],
      ]);
      expect(progress.length).toBeLessThanOrEqual(3);
      const jobId = result._meta?.[META_JOB_ID];
      expect(jobId).toEqual(expect.any(String));
      expect(progress.every((p) => jobIdOf(p) === jobId)).toBe(true);
    },
    JOB_MS,
  );

  it(
    'cancels the Signet job when the host cancels the call (notifications/cancelled)',
    async () => {
      const abort = new AbortController();
      const started = jobStart();
      const call = client.callTool(
        { name: 'start_long_task', arguments: { seconds: 20, payload: {} } },
        {
          signal: abort.signal,
          onprogress: started.onprogress,
        },
      );
      const jobId = await started.jobId;
      abort.abort('the user pressed stop');
      await expect(call).rejects.toThrow(/the user pressed stop/);

      // A separate Signet client of the same credentials sees the job end cancelled: its
      // handler's AbortSignal fired, long before the 20 seconds were up.
      const error = await signet.jobEnd(jobId);
      expect(error).toBeInstanceOf(JobFailedError);
      expect(error).toMatchObject({ code: 'CANCELLED' });
    },
    JOB_MS,
  );

  it('refuses unknown tools and the built-in tools with an MCP error', async () => {
    await expect(client.callTool({ name: 'no_such_tool', arguments: {} })).rejects.toThrow(
      /Unknown tool: no_such_tool/,
    );
    await expect(client.callTool({ name: 'list_tools', arguments: {} })).rejects.toThrow(
      /Unknown tool: list_tools/,
    );
  });
});

describe('pnpm mcp over stdio, with the v2 client on protocol 2026-07-28', () => {
  it(
    'lists and calls the tools',
    async () => {
      const transport = new StdioClientTransport({
        command: process.execPath,
        args: CLI_ARGS,
        cwd: REPO_ROOT,
        env: bridgeEnv({ SIGNET_URL: signet.url, SIGNET_CREDENTIALS: signet.credentialsPath }),
        stderr: 'ignore',
      });
      const client = new Client(
        { name: 'stdio-test-modern', version: '1.0.0' },
        { versionNegotiation: { mode: { pin: '2026-07-28' } } },
      );
      await client.connect(transport);
      try {
        expect(client.getProtocolEra()).toBe('modern');
        const { tools } = await client.listTools();
        expect(tools.map((tool) => tool.name).sort()).toEqual(['batch_sum', 'start_long_task']);
        const result = await client.callTool({ name: 'batch_sum', arguments: { numbers: [7] } });
        expect(result.structuredContent).toEqual({ count: 1, total: 7 });
        const refused = await client.callTool({ name: 'batch_sum', arguments: { numbers: [] } });
        expect(refused.isError).toBe(true);
        expect(refused._meta?.[META_REASON]).toBe('INVALID_ARGS');
      } finally {
        await client.close();
      }
    },
    SPAWN_MS,
  );
});

describe('pnpm mcp over stdio with a wrong key', () => {
  it(
    'refuses every call with an MCP error and never shows a result',
    async () => {
      const { client } = await connect(signet.wrongCredentialsPath);
      try {
        await expect(client.listTools()).rejects.toThrow(/BAD_SIGNATURE/);
        await expect(
          client.callTool({ name: 'batch_sum', arguments: { numbers: [1, 2] } }),
        ).rejects.toThrow(/refused the call unsigned \(BAD_SIGNATURE\)/);
      } finally {
        await client.close();
      }
    },
    SPAWN_MS,
  );
});

describe('the pnpm mcp process', () => {
  it(
    'writes nothing but JSON-RPC on stdout behind `pnpm --silent`, and exits when stdin closes',
    async () => {
      const { child, exited, send } = rawSession('pnpm', ['--silent', 'mcp']);
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      send({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'batch_sum', arguments: { numbers: [2, 3] } },
      });
      try {
        await waitForLine(child.stdout, /"id":2\}\n/, 15_000);
      } finally {
        child.stdin.end();
      }
      expect(await exited).toBe(0);

      const lines = stdout.split('\n').filter((line) => line !== '');
      expect(lines).toHaveLength(2);
      for (const line of lines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
      expect(JSON.parse(lines[1]!).result.structuredContent).toEqual({ count: 2, total: 5 });
    },
    SPAWN_MS,
  );

  it(
    'cancels the jobs still running when stdin closes, then exits',
    async () => {
      const { child, exited, send } = rawSession(process.execPath, CLI_ARGS);
      send({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: {
          name: 'start_long_task',
          arguments: { seconds: 20, payload: {} },
          _meta: { progressToken: 1 },
        },
      });
      let jobId: string | undefined;
      try {
        [, jobId] = await waitForLine(child.stdout, /"signet\/job_id":"([^"]+)"/, 15_000);
      } finally {
        child.stdin.end();
      }
      expect(await exited).toBe(0);
      const end = await signet.jobEnd(jobId!);
      expect(end).toBeInstanceOf(JobFailedError);
      expect(end).toMatchObject({ code: 'CANCELLED' });
    },
    SPAWN_MS,
  );

  it(
    'stops on bad configuration with a one-line reason on stderr and a non-zero exit',
    async () => {
      const cases = [
        [{ SIGNET_CREDENTIALS: '/nonexistent/credentials.json' }, /cannot read credentials/],
        [{ SIGNET_CREDENTIALS: signet.credentialsPath, SIGNET_URL: 'ftp://x' }, /SIGNET_URL/],
        [{ SIGNET_CREDENTIALS: signet.credentialsPath, SIGNET_MCP_PORT: 'x' }, /SIGNET_MCP_PORT/],
      ] as const;
      await Promise.all(
        cases.map(async ([vars, reason]) => {
          const child = spawn(process.execPath, CLI_ARGS, {
            cwd: REPO_ROOT,
            env: bridgeEnv(vars),
            stdio: ['pipe', 'pipe', 'pipe'],
          });
          const exited = exitOf(child, 15_000);
          let stderr = '';
          let stdout = '';
          child.stderr.on('data', (chunk: Buffer) => {
            stderr += chunk.toString();
          });
          child.stdout.on('data', (chunk: Buffer) => {
            stdout += chunk.toString();
          });
          expect(await exited).toBe(1);
          expect(stdout).toBe('');
          expect(stderr).toMatch(reason);
          expect(stderr.trimEnd().split('\n')).toHaveLength(1);
        }),
      );
    },
    SPAWN_MS,
  );
});

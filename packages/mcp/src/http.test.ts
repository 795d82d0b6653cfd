// `pnpm mcp` with SIGNET_MCP_PORT=0: stateless Streamable HTTP, driven by the official v1 client
// (protocol 2025-11-25) and v2 client (pinned to 2026-07-28), and by hand for what a client
// library does not do (close a stream mid-call, forge Host and Origin).
import { request as httpRequest } from 'node:http';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { JobFailedError } from '@signet/client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { META_JOB_ID, META_REASON } from './outcome.ts';
import {
  type HttpBridgeProcess,
  RAW_INITIALIZE,
  startHttpBridge,
} from './testing/bridge-process.ts';
import { jobIdOf, jobStart } from './testing/job-progress.ts';
import { startTestSignet, type TestSignet } from './testing/signet-app.ts';

/** Bounds of the slow tests: a job of a few seconds; spawning `pnpm mcp` and talking to it. */
const JOB_MS = 15_000;
const SPAWN_MS = 30_000;

let signet: TestSignet;
let bridge: HttpBridgeProcess;
let wrongKeyBridge: HttpBridgeProcess;

beforeAll(async () => {
  signet = await startTestSignet();
  [bridge, wrongKeyBridge] = await Promise.all([
    startHttpBridge({ SIGNET_URL: signet.url, SIGNET_CREDENTIALS: signet.credentialsPath }),
    startHttpBridge({ SIGNET_URL: signet.url, SIGNET_CREDENTIALS: signet.wrongCredentialsPath }),
  ]);
}, SPAWN_MS);
// What the bridges logged, to read when a test failed.
afterEach((context) => {
  if (context.task.result?.state !== 'fail') return;
  console.error(`bridge stderr:\n${bridge?.stderr()}\nexit: ${bridge?.child.exitCode}`);
});
afterAll(async () => {
  await Promise.all([bridge?.stop(), wrongKeyBridge?.stop()]);
  await signet?.close();
});

/** What both clients' results have in common. */
interface Result {
  isError?: boolean;
  content: unknown;
  structuredContent?: unknown;
  _meta?: Record<string, unknown>;
}
type Progress = { progress: number; total?: number; message?: string };

/** The same calls through either SDK. */
interface McpCaller {
  listTools(): Promise<{
    tools: Array<{ name: string; inputSchema: object; outputSchema?: object }>;
  }>;
  callTool(
    name: string,
    args: Record<string, unknown>,
    opts?: { onprogress?: (p: Progress) => void; signal?: AbortSignal },
  ): Promise<Result>;
  close(): Promise<void>;
}

async function v1(url: string): Promise<McpCaller> {
  const client = new ClientV1({ name: 'http-test-v1', version: '1.0.0' });
  await client.connect(new TransportV1(new URL(url)));
  return {
    listTools: () => client.listTools(),
    callTool: (name, args, opts) =>
      client.callTool({ name, arguments: args }, undefined, opts) as Promise<Result>,
    close: () => client.close(),
  };
}

async function v2(url: string): Promise<McpCaller> {
  const client = new ClientV2(
    { name: 'http-test-v2', version: '1.0.0' },
    { versionNegotiation: { mode: { pin: '2026-07-28' } } },
  );
  await client.connect(new TransportV2(new URL(url)));
  expect(client.getProtocolEra()).toBe('modern');
  return {
    listTools: () => client.listTools(),
    callTool: (name, args, opts) => client.callTool({ name, arguments: args }, opts),
    close: () => client.close(),
  };
}

/** Waits until the job ends; it must end cancelled (seen by a Signet client of the same key). */
async function expectCancelled(jobId: string) {
  const error = await signet.jobEnd(jobId);
  expect(error).toBeInstanceOf(JobFailedError);
  expect(error).toMatchObject({ code: 'CANCELLED' });
}

for (const [sdk, connect] of [
  ['v1 client (@modelcontextprotocol/sdk, 2025-11-25)', v1],
  ['v2 client (@modelcontextprotocol/client, 2026-07-28)', v2],
] as const) {
  describe(`pnpm mcp over Streamable HTTP, with the ${sdk}`, () => {
    let client: McpCaller;
    beforeAll(async () => {
      client = await connect(bridge.url);
    });
    afterAll(() => client?.close());

    it('lists the tools with their schemas', async () => {
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name).sort()).toEqual(['batch_sum', 'start_long_task']);
      expect(tools.find((tool) => tool.name === 'batch_sum')).toMatchObject({
        inputSchema: { type: 'object', required: ['numbers'] },
        outputSchema: { type: 'object', required: ['count', 'total'] },
      });
    });

    it('calls batch_sum', async () => {
      const result = await client.callTool('batch_sum', { numbers: [4, 5] });
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toEqual({ count: 2, total: 9 });
    });

    it('answers INVALID_ARGS as a tool result with isError', async () => {
      const result = await client.callTool('batch_sum', { numbers: [] });
      expect(result.isError).toBe(true);
      expect(JSON.stringify(result.content)).toMatch(/INVALID_ARGS/);
      expect(result._meta?.[META_REASON]).toBe('INVALID_ARGS');
    });

    it(
      'streams a job’s progress, then answers its output',
      async () => {
        const progress: Progress[] = [];
        const result = await client.callTool(
          'start_long_task',
          { seconds: 2, payload: { sdk } },
          { onprogress: (update) => progress.push(update) },
        );
        expect(result.structuredContent).toEqual({ sdk });
        expect(progress.slice(0, 2).map((p) => [p.progress, p.total])).toEqual([
          [0, 2],
          [1, 2],
        ]);
        expect(progress.every((p) => jobIdOf(p) === result._meta?.[META_JOB_ID])).toBe(true);
      },
      JOB_MS,
    );
  });
}

describe('cancellation over stateless HTTP', () => {
  it(
    'the v2 client aborting a call closes its stream: the job is cancelled',
    async () => {
      const client = await v2(bridge.url);
      try {
        const abort = new AbortController();
        const started = jobStart();
        const call = client.callTool(
          'start_long_task',
          { seconds: 20, payload: {} },
          {
            signal: abort.signal,
            onprogress: started.onprogress,
          },
        );
        const jobId = await started.jobId;
        abort.abort('stop');
        await expect(call).rejects.toThrow();
        await expectCancelled(jobId);
      } finally {
        await client.close();
      }
    },
    JOB_MS,
  );

  it(
    'a 2025-11-25 POST whose response stream the client closes cancels the job',
    async () => {
      const abort = new AbortController();
      const response = await fetch(bridge.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 7,
          method: 'tools/call',
          params: {
            name: 'start_long_task',
            arguments: { seconds: 20, payload: {} },
            _meta: { progressToken: 'p' },
          },
        }),
        signal: abort.signal,
      });
      expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
      expect(response.headers.get('mcp-session-id')).toBeNull();
      const reader = response.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      let jobId: string | undefined;
      while (jobId === undefined) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended before any progress: ${text}`);
        text += decoder.decode(value, { stream: true });
        jobId = text.match(/"signet\/job_id":"([^"]+)"/)?.[1];
      }
      abort.abort();
      await expectCancelled(jobId);
    },
    JOB_MS,
  );
});

describe('pnpm mcp over HTTP with a wrong key', () => {
  it('refuses every call with an MCP error and never shows a result', async () => {
    const client = await v2(wrongKeyBridge.url);
    try {
      await expect(client.listTools()).rejects.toThrow(/BAD_SIGNATURE/);
      await expect(client.callTool('batch_sum', { numbers: [1] })).rejects.toThrow(
        /refused the call unsigned \(BAD_SIGNATURE\)/,
      );
    } finally {
      await client.close();
    }
  });
});

/** One raw HTTP POST (node:http: fetch will not send a forged Host). */
function post(
  url: string,
  headers: Record<string, string>,
  body: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the HTTP endpoint', () => {
  const initialize = JSON.stringify(RAW_INITIALIZE);
  const json = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
  };

  it('refuses DNS rebinding: a Host or Origin other than 127.0.0.1 or localhost is a 403', async () => {
    const port = new URL(bridge.url).port;
    const evilHost = await post(bridge.url, { ...json, host: `evil.example:${port}` }, initialize);
    expect(evilHost.status).toBe(403);
    expect(evilHost.body).toMatch(/Invalid Host/);
    const evilOrigin = await post(
      bridge.url,
      { ...json, origin: 'http://evil.example' },
      initialize,
    );
    expect(evilOrigin.status).toBe(403);
    expect(evilOrigin.body).toMatch(/Invalid Origin/);

    const local = await post(
      bridge.url,
      { ...json, host: `localhost:${port}`, origin: `http://localhost:${port}` },
      initialize,
    );
    expect(local.status).toBe(200);
    // Stateless: no session to keep.
    expect(local.headers['mcp-session-id']).toBeUndefined();
  });

  it('acknowledges a notifications/cancelled POST and ignores it: without sessions it names no call', async () => {
    const cancelled = await post(
      bridge.url,
      { ...json, 'mcp-protocol-version': '2025-11-25' },
      JSON.stringify({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: 7, reason: 'stop' },
      }),
    );
    expect(cancelled.status).toBe(202);
    expect(cancelled.body).toBe('');
  });

  it('bounds the request body (413) and serves nothing but /mcp (404)', async () => {
    const large = await post(bridge.url, json, `"${'x'.repeat(1024 * 1024 + 1)}"`);
    expect(large.status).toBe(413);
    const elsewhere = await post(bridge.url.replace(/\/mcp$/, '/other'), json, initialize);
    expect(elsewhere.status).toBe(404);
  });
});

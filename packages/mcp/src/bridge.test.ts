// The bridge in this process, with the v2 client on an in-memory transport: what only a lying,
// tampering or absent Signet server shows, and the bridge's own limits.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { JobFailedError } from '@signet/client';
import { sign } from '@signet/protocol';
import type { Tools } from '@signet/server-app/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSignetBridge, type SignetBridge, type SignetBridgeOptions } from './bridge.ts';
import { META_JOB_ID, META_REASON } from './outcome.ts';
import { jobStart } from './testing/job-progress.ts';
import { startTestSignet, type TestSignet } from './testing/signet-app.ts';
import { typedBridge } from './typed-calls.ts';

/** Bound of the tests that run a job until it is cancelled. */
const JOB_MS = 15_000;

let signet: TestSignet;

beforeAll(async () => {
  signet = await startTestSignet();
});
afterAll(() => signet?.close());

async function connected(options: Partial<SignetBridgeOptions> = {}) {
  const bridge = createSignetBridge({
    url: signet.url,
    credentials: signet.credentials,
    ...options,
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await bridge.createServer().connect(serverSide);
  const client = new Client({ name: 'bridge-test', version: '1.0.0' });
  await client.connect(clientSide);
  return { bridge, client };
}

/** A fetch that lets `rewrite` change the response envelope of calls to `tool`. */
function rewriting(tool: string, rewrite: (envelope: Record<string, unknown>) => object) {
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const response = await fetch(input, init);
    if (!String(input).endsWith(`/trpc/${tool}`)) return response;
    const body = (await response.json()) as { result: { data: Record<string, unknown> } };
    body.result.data = rewrite(body.result.data) as Record<string, unknown>;
    return Response.json(body, { status: response.status });
  };
}

describe('the bridge in process', () => {
  let bridge: SignetBridge;
  let client: Client;

  beforeAll(async () => {
    ({ bridge, client } = await connected({ maxConcurrentCalls: 1 }));
  });
  afterAll(() => client?.close());

  it('discovers the tools, checked against the fingerprint', async () => {
    const found = await bridge.discover();
    expect(found.serverId).toBe(signet.credentials.serverId);
    expect(found.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(found.tools.map((tool) => [tool.name, tool.kind])).toEqual([
      ['batch_sum', 'tool'],
      ['start_long_task', 'job'],
    ]);
  });

  it('answers typed calls: the output, or the reason code of a refusal', async () => {
    const typed = typedBridge<Tools, Parameters<Client['callTool']>[1]>(client);
    await expect(typed.call('batch_sum', { numbers: [1, 2.5] })).resolves.toEqual({
      ok: true,
      output: { count: 2, total: 3.5 },
    });
    const refused = await typed.call('batch_sum', { numbers: [] });
    expect(refused).toMatchObject({ ok: false, reason: 'INVALID_ARGS' });
    expect(refused.ok ? '' : refused.text).toMatch(/INVALID_ARGS/);
  });

  it(
    'answers a job cancelled by someone else as a refusal (isError, CANCELLED)',
    async () => {
      const started = jobStart();
      const call = client.callTool(
        { name: 'start_long_task', arguments: { seconds: 20, payload: {} } },
        {
          onprogress: started.onprogress,
        },
      );
      const jobId = await started.jobId;
      await signet.cancel(jobId);
      const result = await call;
      expect(result.isError).toBe(true);
      expect(result._meta).toMatchObject({ [META_REASON]: 'CANCELLED', [META_JOB_ID]: jobId });
      expect(JSON.stringify(result.content)).toMatch(/CANCELLED: the job was cancelled/);
    },
    JOB_MS,
  );

  it(
    'refuses a call past the cap on calls in flight, and cancels the jobs of aborted calls',
    async () => {
      const started = jobStart();
      const abort = new AbortController();
      const running = client.callTool(
        { name: 'start_long_task', arguments: { seconds: 20, payload: {} } },
        {
          signal: abort.signal,
          onprogress: started.onprogress,
        },
      );
      const jobId = await started.jobId;
      expect(bridge.callsInFlight).toBe(1);
      await expect(
        client.callTool({ name: 'batch_sum', arguments: { numbers: [1] } }),
      ).rejects.toThrow(/1 tool calls are already in flight/);

      abort.abort('enough');
      await expect(running).rejects.toThrow(/enough/);
      const end = await signet.jobEnd(jobId);
      expect(end).toBeInstanceOf(JobFailedError);
      expect(end).toMatchObject({ code: 'CANCELLED' });
      await bridge.drain(5_000);
      expect(bridge.callsInFlight).toBe(0);
    },
    JOB_MS,
  );
});

describe('a Signet server the bridge cannot trust, or cannot reach', () => {
  it('refuses a manifest that does not match the fingerprint (MCP error)', async () => {
    const { client } = await connected({
      // A server_identity answer validly signed, with another fingerprint.
      fetch: rewriting('server_identity', (envelope) => {
        const { signature: _, ...unsigned } = envelope;
        const result = { ...(unsigned.result as object), fingerprint: `sha256:${'0'.repeat(64)}` };
        return sign({ ...unsigned, result }, signet.credentials.key.secret!);
      }),
    });
    try {
      await expect(client.listTools()).rejects.toThrow(/does not match its fingerprint/);
      await expect(
        client.callTool({ name: 'batch_sum', arguments: { numbers: [1] } }),
      ).rejects.toThrow(/does not match its fingerprint/);
    } finally {
      await client.close();
    }
  });

  it('never shows a response that fails verification (MCP error, no result)', async () => {
    const { client } = await connected({
      fetch: rewriting('batch_sum', (envelope) => ({
        ...envelope,
        result: { count: 1, total: 1_000_000 },
      })),
    });
    try {
      const error = await client
        .callTool({ name: 'batch_sum', arguments: { numbers: [1] } })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error).toMatchObject({
        code: ProtocolErrorCode.InternalError,
        message: expect.stringMatching(/failed verification \(BAD_RESPONSE_SIGNATURE\)/),
        data: { reason: 'BAD_RESPONSE_SIGNATURE' },
      });
      // Nothing of the tampered answer reaches the host.
      const { message, data } = error as ProtocolError;
      expect(JSON.stringify({ message, data })).not.toMatch(/1000000/);
    } finally {
      await client.close();
    }
  });

  it('says so when the server cannot be reached (MCP error)', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const url = `http://127.0.0.1:${port}`;
    const { client } = await connected({ url });
    try {
      await expect(client.listTools()).rejects.toThrow(
        `cannot reach the Signet server at ${url} (ECONNREFUSED)`,
      );
    } finally {
      await client.close();
    }
  });
});

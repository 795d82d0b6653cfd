// The tRPC front (SIGNET_HTTP=trpc): the router served by tRPC's standalone adapter, with the
// thin layer around it that keeps check 1 and Retry-After (DESIGN 1.4-1.5). The end-to-end,
// security and property suites also run against this front (vitest.config.ts).
import { contractSet } from '@signet/contracts';
import { type RequestEnvelope, type ResponseEnvelope, verify } from '@signet/protocol';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keyring } from './keyring.ts';
import { type RunningSignetServer, startSignetServer } from './server.ts';
import { MemoryStore } from './stores/memory.ts';
import {
  type EnvelopeReply,
  expectRefusal,
  type PostInit,
  postChunks,
  postEnvelope,
  signedRequest,
  watchUrl,
} from './testing/envelopes.ts';
import { HeldJobs, held, jobTestHandlers } from './testing/job-tools.ts';
import { parseSse } from './testing/sse.ts';
import type { SignetErrorShape } from './trpc.ts';

const SERVER_ID = 'trpc-front-server';
const SECRET = 'a-test-secret-of-at-least-32-characters';
const MAX_BODY_BYTES = 4 * 1024;
const tools = contractSet(held);

const heldJobs = new HeldJobs();
/** The server's clock: the rate limit (1 call a second, burst 3) counts on it. */
const clock = { now: Date.now() };
/** Moves the clock on far enough for a full rate-limit bucket. */
const refill = () => {
  clock.now += 60_000;
};
let server: RunningSignetServer<typeof tools>;

beforeAll(async () => {
  server = await startSignetServer({
    contracts: tools,
    handlers: { held: jobTestHandlers(heldJobs).held },
    keyring: () =>
      Keyring.parse({
        server_id: SERVER_ID,
        clients: [{ client_id: 'alice', keys: [{ kid: 'k1', secret: SECRET }] }],
      }),
    store: new MemoryStore(),
    logger: pino({ level: 'silent' }),
    maxBodyBytes: MAX_BODY_BYTES,
    rateLimit: { perSecond: 1, burst: 3 },
    now: () => clock.now,
    httpFront: 'trpc',
  });
});

afterAll(async () => {
  await server?.close({ graceMs: 0 });
});

const alice = { serverId: SERVER_ID, clientId: 'alice', kid: 'k1', secret: SECRET };

/** A call signed by alice, on the server's clock. */
function signed(tool: string, args: Record<string, unknown>): RequestEnvelope {
  return signedRequest(alice, tool, args, { ts_ms: clock.now });
}

/** POSTs (or GETs) `body` to a path of the server. */
function call(path: string, body: unknown, init?: PostInit): Promise<EnvelopeReply> {
  return postEnvelope(server.url, path, body, init);
}

/** Reads a watch_job stream to its end, calling `onText` with all that has come so far. */
async function watch(request: RequestEnvelope, onText: (text: string) => void = () => {}) {
  const response = await fetch(watchUrl(server.url, request), {
    headers: { 'last-event-id': '0' },
    signal: AbortSignal.timeout(10_000),
  });
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    onText(text);
  }
  return { status: response.status, contentType: response.headers.get('content-type'), text };
}

describe("the tRPC front: tRPC's standalone adapter, wrapped", () => {
  it('is what answers: a signed call gets a signed envelope, through the adapter', async () => {
    refill();
    const request = signed('poll_job', { job_id: crypto.randomUUID() });
    const reply = await call('/trpc/poll_job', request);
    expect(reply.status).toBe(404);
    const envelope = reply.json?.error?.data.envelope;
    expect(envelope && verify(envelope, SECRET)).toBe(true);
    expect(envelope).toMatchObject({ nonce: request.nonce, error: { code: 'JOB_NOT_FOUND' } });
    // (tRPC's adapter varies its answers on the headers that pick its links; Signet's does not.)
    expect(reply.headers.get('vary')).toBe('trpc-accept, accept');
  });

  it('answers /healthz, and 404 UNKNOWN_TOOL outside the router', async () => {
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });
    expectRefusal(await call('/trpc/no_such_tool', {}), 404, 'UNKNOWN_TOOL');
    expectRefusal(await call('/elsewhere', {}), 404, 'UNKNOWN_TOOL');
    expectRefusal(await call('/trpc/%E0%A4%A', {}), 404, 'UNKNOWN_TOOL');
  });

  it('a body over the limit is 413 PAYLOAD_TOO_LARGE, declared or streamed', async () => {
    const body = Buffer.alloc(MAX_BODY_BYTES + 1, 0x20);
    const declared = await postChunks(server.url, 'poll_job', [body], {
      'content-length': body.length,
    });
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.text).error.data.reason).toBe('PAYLOAD_TOO_LARGE');
    const pieces = [body.subarray(0, 1024), body.subarray(1024, 3000), body.subarray(3000)];
    const streamed = await postChunks(server.url, 'poll_job', pieces, {
      'transfer-encoding': 'chunked',
    });
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.text).error.data.reason).toBe('PAYLOAD_TOO_LARGE');
  });

  it('a body that is not application/json is 415, even one tRPC itself would take', async () => {
    refill();
    const request = signed('poll_job', { job_id: crypto.randomUUID() });
    for (const contentType of ['text/plain', 'application/octet-stream', 'multipart/form-data']) {
      expectRefusal(
        await call('/trpc/poll_job', request, { contentType }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
    }
    // None of them spent the nonce.
    expect((await call('/trpc/poll_job', request)).json?.error?.data.reason).toBe('JOB_NOT_FOUND');
  });

  it('a body that is not JSON, or empty, is 400 PARSE_ERROR', async () => {
    expectRefusal(await call('/trpc/poll_job', '{"v":'), 400, 'PARSE_ERROR');
    expectRefusal(await call('/trpc/poll_job', ''), 400, 'PARSE_ERROR');
  });

  it('GET on a mutation and POST on watch_job are 405 METHOD_NOT_ALLOWED; batching is refused', async () => {
    const input = encodeURIComponent(JSON.stringify(signed('poll_job', { job_id: 'x' })));
    expectRefusal(
      await call(`/trpc/poll_job?input=${input}`, undefined, { method: 'GET' }),
      405,
      'METHOD_NOT_ALLOWED',
    );
    expectRefusal(
      await call('/trpc/watch_job', signed('watch_job', { job_id: 'x' })),
      405,
      'METHOD_NOT_ALLOWED',
    );
    expectRefusal(
      await call('/trpc/poll_job,cancel_job?batch=1', { 0: signed('poll_job', { job_id: 'x' }) }),
      400,
      'BAD_ENVELOPE',
    );
  });

  it('the call past the rate limit is 429 RATE_LIMITED with Retry-After, signed', async () => {
    refill();
    const statuses: number[] = [];
    let limited: EnvelopeReply | undefined;
    for (let i = 0; i < 4; i++) {
      const reply = await call('/trpc/poll_job', signed('poll_job', { job_id: 'none' }));
      statuses.push(reply.status);
      if (reply.status === 429) limited = reply;
    }
    expect(statuses).toEqual([404, 404, 404, 429]);
    expect(limited?.headers.get('retry-after')).toBe('1');
    expect(limited?.json?.error?.data.reason).toBe('RATE_LIMITED');
    const envelope = limited?.json?.error?.data.envelope;
    expect(envelope && verify(envelope, SECRET)).toBe(true);
    // Other answers carry no Retry-After.
    refill();
    const other = await call('/trpc/poll_job', signed('poll_job', { job_id: 'none' }));
    expect(other.status).toBe(404);
    expect(other.headers.get('retry-after')).toBeNull();
  });

  it("watch_job streams signed updates as tRPC's SSE, to the end (Last-Event-ID is not signed input)", async () => {
    refill();
    const start = await call('/trpc/held', signed('held', { label: 'watched' }));
    expect(start.status).toBe(200);
    const jobId = start.json?.result?.data.result?.job_id as string;
    await heldJobs.until(() => heldJobs.started.includes('watched'));

    const request = signed('watch_job', { job_id: jobId });
    let released = false;
    const stream = await watch(request, (text) => {
      // Once the running update has come, the job may finish.
      if (!released && text.includes('halfway')) {
        released = true;
        heldJobs.release('watched');
      }
    });
    expect(stream.status).toBe(200);
    expect(stream.contentType).toBe('text/event-stream');
    const events = parseSse(stream.text);
    expect(events[0]).toEqual({ event: 'connected', data: '{}' });
    expect(events.at(-1)).toMatchObject({ event: 'return' });
    const updates = events.slice(1, -1);
    expect(updates.length).toBeGreaterThanOrEqual(2);
    const ids = updates.map((event) => Number(event.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const envelopes = updates.map((event) => JSON.parse(event.data!) as ResponseEnvelope);
    for (const envelope of envelopes) {
      expect(verify(envelope, SECRET)).toBe(true);
      expect(envelope.nonce).toBe(request.nonce);
    }
    expect(envelopes.map((envelope) => envelope.status)).toContain('running');
    expect(envelopes.at(-1)).toMatchObject({ status: 'done', result: { label: 'watched' } });
  });

  it("a refused watch is tRPC's serialized-error event, with the reason and the signed envelope", async () => {
    refill();
    const request = signed('watch_job', { job_id: crypto.randomUUID() });
    const stream = await watch(request);
    const events = parseSse(stream.text);
    expect(events.map((event) => event.event)).toEqual(['connected', 'serialized-error']);
    const error = JSON.parse(events[1]!.data!) as SignetErrorShape;
    expect(error.data).toMatchObject({ reason: 'JOB_NOT_FOUND', httpStatus: 404 });
    expect(verify(error.data.envelope!, SECRET)).toBe(true);
    expect(JSON.stringify(error)).not.toMatch(/stack|\bat \//);
  });
});

// End to end over real HTTP: the app as `pnpm serve` starts it, the typed client, hand-built
// envelopes (DESIGN 1.1-1.5), and a tampering proxy between the client and the server.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient, jobHandle, signetReason } from '@signet/client';
import { buildManifest, manifestFingerprint, tools } from '@signet/contracts';
import {
  newNonce,
  PROTOCOL_VERSION,
  type RequestEnvelope,
  type ResponseEnvelope,
  sign,
  verify,
} from '@signet/protocol';
import {
  generateSecret,
  type KeyringFile,
  type SignetErrorShape,
  type SignetRouter,
} from '@signet/server';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AppServer, startApp } from './app.ts';
import { FRONT, frontConfig } from './testing/front.ts';

const SERVER_ID = 'mcp-server-001';
const secrets = {
  k1: generateSecret(),
  k2: generateSecret(),
  client2: generateSecret(),
  limited: generateSecret(),
};
const keyring: KeyringFile = {
  server_id: SERVER_ID,
  clients: [
    {
      client_id: 'client-001',
      tools: ['*'],
      keys: [
        { kid: 'k1', secret: secrets.k1 },
        { kid: 'k2', secret: secrets.k2 },
      ],
    },
    { client_id: 'client-002', keys: [{ kid: 'k1', secret: secrets.client2 }] },
    {
      client_id: 'client-limited',
      tools: ['server_identity'],
      keys: [{ kid: 'k1', secret: secrets.limited }],
    },
  ],
};

type Router = SignetRouter<typeof tools>;
type Envelope = Omit<RequestEnvelope, 'signature'> & Record<string, unknown>;

let server: AppServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'signet-e2e-'));
  const keyringPath = join(dir, 'keyring.json');
  writeFileSync(keyringPath, JSON.stringify(keyring));
  server = await startApp(
    frontConfig({ SIGNET_STORE: 'memory:', SIGNET_PORT: '0', SIGNET_KEYRING: keyringPath }),
    pino({ level: 'silent' }),
  );
  expect(server.httpFront).toBe(FRONT);
});

afterAll(async () => {
  await server?.close({ graceMs: 0 });
  rmSync(dir, { recursive: true, force: true });
});

// ---- helpers -------------------------------------------------------------------------------

function typedClient(opts: {
  url?: string;
  clientId?: string;
  kid?: string;
  secret?: string;
  now?: () => number;
}) {
  return createSignetClient<Router>({
    url: opts.url ?? server.url,
    serverId: SERVER_ID,
    clientId: opts.clientId ?? 'client-001',
    key: { kid: opts.kid ?? 'k1', secret: opts.secret ?? secrets.k1 },
    ...(opts.now ? { now: opts.now } : {}),
  });
}

/** A fresh, unsigned request envelope from client-001 (key k1); `over` replaces fields. */
function envelope(tool: string, args: Record<string, unknown>, over: Partial<Envelope> = {}) {
  const base: Envelope = {
    v: PROTOCOL_VERSION,
    request_id: randomUUID(),
    ts_ms: Date.now(),
    client_id: 'client-001',
    server_id: SERVER_ID,
    tool,
    args,
    nonce: newNonce(),
    kid: 'k1',
  };
  return { ...base, ...over };
}

function signed(tool: string, args: Record<string, unknown>, over: Partial<Envelope> = {}) {
  return sign(envelope(tool, args, over), secrets.k1) as RequestEnvelope;
}

interface HttpReply {
  status: number;
  headers: Headers;
  text: string;
  body: { result?: { data: ResponseEnvelope }; error?: SignetErrorShape };
}

async function post(
  path: string,
  body: unknown,
  init: { contentType?: string; method?: string } = {},
): Promise<HttpReply> {
  const method = init.method ?? 'POST';
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'content-type': init.contentType ?? 'application/json' },
    ...(method === 'GET' ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

/** A successful call: HTTP 200 and a response envelope signed with `secret` for `request`. */
function expectAnswer(reply: HttpReply, request: RequestEnvelope, secret = secrets.k1) {
  expect(reply.status, reply.text).toBe(200);
  const data = reply.body.result?.data;
  if (!data) throw new Error(`no envelope in ${reply.text}`);
  expect(verify(data, secret)).toBe(true);
  expect(data).toMatchObject({
    v: PROTOCOL_VERSION,
    request_id: request.request_id,
    nonce: request.nonce,
    server_id: SERVER_ID,
    ok: true,
    error: null,
  });
  return data;
}

/**
 * A refusal with `status` and `reason` (DESIGN 1.5). With `signedFor`, a signed error envelope
 * answering that request must come with it (checks 4-9); without, there must be none (checks 1-3
 * and the HTTP layer). Never a stack trace.
 */
function expectRefusal(
  reply: HttpReply,
  status: number,
  reason: string,
  signedFor?: { request: RequestEnvelope; secret: string },
) {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.text).not.toContain('stack');
  expect(reply.text).not.toContain('at /');
  expect(reply.body.result).toBeUndefined();
  const error = reply.body.error;
  if (!error) throw new Error(`no error in ${reply.text}`);
  expect(error.data.reason).toBe(reason);
  expect(error.data.httpStatus).toBe(status);
  const signedEnvelope = error.data.envelope;
  if (!signedFor) {
    expect(signedEnvelope).toBeUndefined();
    return error;
  }
  if (!signedEnvelope) throw new Error(`no signed envelope in ${reply.text}`);
  expect(verify(signedEnvelope, signedFor.secret)).toBe(true);
  expect(signedEnvelope).toMatchObject({
    v: PROTOCOL_VERSION,
    ok: false,
    status: 'error',
    result: null,
    server_id: SERVER_ID,
    request_id: signedFor.request.request_id,
    nonce: signedFor.request.nonce,
  });
  expect(signedEnvelope.error?.code).toBe(reason);
  return error;
}

/** Sends raw bytes with node:http, for what fetch will not do (chunked oversize bodies). */
function rawPost(
  path: string,
  chunks: Buffer[],
  headers: Record<string, string | number>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(`${server.url}${path}`, { method: 'POST', headers }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }),
      );
      res.on('error', reject);
    });
    // The server answers 413 and closes without reading the rest: a reset while we still write
    // is expected; only a failure before any answer is one.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

function asReply(raw: { status: number; text: string }): HttpReply {
  return { ...raw, headers: new Headers(), body: JSON.parse(raw.text) };
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (data) => {
      throw new Error(`expected a refusal, got ${JSON.stringify(data)}`);
    },
    (error: unknown) => error,
  );
}

// ---- the typed client ------------------------------------------------------------------------

describe('the typed client against the running app', () => {
  it('server_identity names the server, its contracts and its tools', async () => {
    const identity = await typedClient({}).server_identity.mutate({});
    expect(identity.server_id).toBe(SERVER_ID);
    expect(identity.fingerprint).toBe(manifestFingerprint(buildManifest(tools)));
    expect([...identity.capabilities.tools].sort()).toEqual(
      [
        'batch_sum',
        'cancel_job',
        'poll_job',
        'server_identity',
        'start_long_task',
        'watch_job',
      ].sort(),
    );
    expect(identity.capabilities.protocol).toBe(PROTOCOL_VERSION);
    expect(identity.capabilities.limits.max_body_bytes).toBe(1024 * 1024);
  });

  it('batch_sum adds the numbers', async () => {
    await expect(typedClient({}).batch_sum.mutate({ numbers: [1, 2, 3.5] })).resolves.toEqual({
      count: 3,
      total: 6.5,
    });
  });

  it('either key of a client works while keys rotate', async () => {
    const withK2 = typedClient({ kid: 'k2', secret: secrets.k2 });
    await expect(withK2.batch_sum.mutate({ numbers: [4, 5] })).resolves.toEqual({
      count: 2,
      total: 9,
    });
  });

  it('a client whose clock is off by more than the window corrects it and gets through', async () => {
    const skewed = typedClient({ now: () => Date.now() + 400_000 });
    await expect(skewed.batch_sum.mutate({ numbers: [1] })).resolves.toEqual({
      count: 1,
      total: 1,
    });
  });

  it('a job runs to its output, reports progress, and only its owner may touch it', async () => {
    const client = typedClient({});
    const other = typedClient({ clientId: 'client-002', secret: secrets.client2 });
    const payload = { a: 1, nested: { list: [1, 'two', null] } };
    const ticket = await client.start_long_task.mutate({ seconds: 1, payload });
    expect(ticket.job_id).toMatch(/^[0-9a-f-]{36}$/);

    // Another client sees no such job, and cannot cancel it.
    for (const attempt of [
      other.poll_job.mutate({ job_id: ticket.job_id }),
      other.cancel_job.mutate({ job_id: ticket.job_id }),
    ]) {
      const error = await rejectionOf(attempt);
      expect(signetReason(error)).toBe('JOB_NOT_FOUND');
      expect((error as { data?: { httpStatus?: number } }).data?.httpStatus).toBe(404);
    }

    const progress: Array<{ current: number; total?: number }> = [];
    const output = await jobHandle(client, ticket).result({
      onProgress: (p) => progress.push(p),
    });
    expect(output).toEqual(payload);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((p) => p.total === 1)).toBe(true);

    await expect(client.poll_job.mutate({ job_id: ticket.job_id })).resolves.toEqual({
      job_id: ticket.job_id,
      status: 'done',
      output: payload,
    });
    // Cancelling a finished job changes nothing.
    await expect(client.cancel_job.mutate({ job_id: ticket.job_id })).resolves.toMatchObject({
      status: 'done',
    });
    await expect(client.poll_job.mutate({ job_id: ticket.job_id })).resolves.toMatchObject({
      status: 'done',
      output: payload,
    });
  });

  it('invalid arguments are refused with INVALID_ARGS', async () => {
    const error = await rejectionOf(typedClient({}).batch_sum.mutate({ numbers: [] }));
    expect(signetReason(error)).toBe('INVALID_ARGS');
  });
});

// ---- hand-built envelopes -------------------------------------------------------------------

describe('hand-built envelopes over raw HTTP (DESIGN 1.4 / 1.5)', () => {
  it('a correctly signed call is answered with a signed envelope', async () => {
    const request = signed('batch_sum', { numbers: [1, 2] });
    const data = expectAnswer(await post('/trpc/batch_sum', request), request);
    expect(data).toMatchObject({ status: 'ok', result: { count: 2, total: 3 } });
  });

  it('a forged signature is 401 BAD_SIGNATURE, with nothing signed', async () => {
    const request = sign(envelope('batch_sum', { numbers: [1] }), generateSecret());
    expectRefusal(await post('/trpc/batch_sum', request), 401, 'BAD_SIGNATURE');
  });

  it("a request signed with another client's key is 401 BAD_SIGNATURE", async () => {
    const request = sign(envelope('batch_sum', { numbers: [1] }), secrets.client2);
    expectRefusal(await post('/trpc/batch_sum', request), 401, 'BAD_SIGNATURE');
  });

  it('an unknown client gets exactly the answer a bad signature gets', async () => {
    const unknown = sign(
      envelope('batch_sum', { numbers: [1] }, { client_id: 'client-999' }),
      secrets.k1,
    );
    const forged = sign(envelope('batch_sum', { numbers: [1] }), generateSecret());
    const unknownReply = await post('/trpc/batch_sum', unknown);
    const forgedReply = await post('/trpc/batch_sum', forged);
    expectRefusal(unknownReply, 401, 'BAD_SIGNATURE');
    expect(unknownReply.body).toEqual(forgedReply.body);
  });

  it('a kid naming one key with a signature by the other key is 401', async () => {
    const request = sign(envelope('batch_sum', { numbers: [1] }, { kid: 'k1' }), secrets.k2);
    expectRefusal(await post('/trpc/batch_sum', request), 401, 'BAD_SIGNATURE');
  });

  it('the response is signed with the key that verified the request', async () => {
    const { kid: _none, ...withoutKid } = envelope('batch_sum', { numbers: [7] });
    const request = sign(withoutKid, secrets.k2) as RequestEnvelope;
    const data = expectAnswer(await post('/trpc/batch_sum', request), request, secrets.k2);
    expect(verify(data, secrets.k1)).toBe(false);
    expect(data.result).toEqual({ count: 1, total: 7 });
  });

  it('another server_id is 401 WRONG_SERVER, signed', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { server_id: 'mcp-server-002' });
    expectRefusal(await post('/trpc/batch_sum', request), 401, 'WRONG_SERVER', {
      request,
      secret: secrets.k1,
    });
  });

  for (const [label, offset] of [
    ['stale', -301_000],
    ['future', 301_000],
  ] as const) {
    it(`a ${label} ts_ms is 401 STALE_REQUEST with the server's clock`, async () => {
      const request = signed('batch_sum', { numbers: [1] }, { ts_ms: Date.now() + offset });
      const before = Date.now();
      const reply = await post('/trpc/batch_sum', request);
      const after = Date.now();
      const error = expectRefusal(reply, 401, 'STALE_REQUEST', { request, secret: secrets.k1 });
      const serverNow = (error.data.details as { server_ts_ms?: number }).server_ts_ms;
      expect(serverNow).toBeGreaterThanOrEqual(before);
      expect(serverNow).toBeLessThanOrEqual(after);
      expect(error.data.envelope?.error?.details).toEqual(error.data.details);
    });
  }

  it('a replayed request is 409 REPLAYED_NONCE', async () => {
    const request = signed('batch_sum', { numbers: [1, 1] });
    expectAnswer(await post('/trpc/batch_sum', request), request);
    expectRefusal(await post('/trpc/batch_sum', request), 409, 'REPLAYED_NONCE', {
      request,
      secret: secrets.k1,
    });
  });

  it('an envelope naming another tool than the URL is 400 TOOL_MISMATCH', async () => {
    const request = signed('server_identity', {});
    expectRefusal(await post('/trpc/batch_sum', request), 400, 'TOOL_MISMATCH');
  });

  it('an unknown envelope field is 400 BAD_ENVELOPE', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { extra: 'field' });
    expectRefusal(await post('/trpc/batch_sum', request), 400, 'BAD_ENVELOPE');
  });

  it('another protocol version is 400 UNSUPPORTED_VERSION', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { v: 'mcp/0.2' });
    expectRefusal(await post('/trpc/batch_sum', request), 400, 'UNSUPPORTED_VERSION');
  });

  it('invalid args are 400 INVALID_ARGS with the issues, signed', async () => {
    const request = signed('batch_sum', { numbers: ['a'] });
    const error = expectRefusal(await post('/trpc/batch_sum', request), 400, 'INVALID_ARGS', {
      request,
      secret: secrets.k1,
    });
    expect(error.data.details).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'numbers.0' })]),
    );
    expect(error.data.envelope?.error?.details).toEqual(error.data.details);
  });

  it('a client limited to some tools is 403 TOOL_NOT_ALLOWED for the others', async () => {
    const as = (tool: string, args: Record<string, unknown>) =>
      sign(
        envelope(tool, args, { client_id: 'client-limited', kid: 'k1' }),
        secrets.limited,
      ) as RequestEnvelope;
    const allowed = as('server_identity', {});
    expectAnswer(await post('/trpc/server_identity', allowed), allowed, secrets.limited);
    const request = as('batch_sum', { numbers: [1] });
    expectRefusal(await post('/trpc/batch_sum', request), 403, 'TOOL_NOT_ALLOWED', {
      request,
      secret: secrets.limited,
    });
  });

  it('an unknown tool is 404 UNKNOWN_TOOL', async () => {
    const request = signed('no_such_tool', {});
    expectRefusal(await post('/trpc/no_such_tool', request), 404, 'UNKNOWN_TOOL');
  });

  it('a malformed percent-encoded tool path is 404 UNKNOWN_TOOL, and the server lives on', async () => {
    // Regression: decodeURIComponent threw inside the request listener and killed the process.
    const request = signed('batch_sum', { numbers: [1] });
    expectRefusal(await post('/trpc/%E0%A4%A', request), 404, 'UNKNOWN_TOOL');
    expectAnswer(await post('/trpc/batch_sum', request), request);
  });

  it("another client's job is 404 JOB_NOT_FOUND, signed for the asker", async () => {
    const start = signed('start_long_task', { seconds: 1, payload: {} });
    const jobId = expectAnswer(await post('/trpc/start_long_task', start), start).result?.job_id;
    expect(typeof jobId).toBe('string');
    const request = sign(
      envelope('poll_job', { job_id: jobId }, { client_id: 'client-002', kid: 'k1' }),
      secrets.client2,
    ) as RequestEnvelope;
    expectRefusal(await post('/trpc/poll_job', request), 404, 'JOB_NOT_FOUND', {
      request,
      secret: secrets.client2,
    });
  });

  // A poll reads its job alongside its nonce claim; the answer still follows the checks' order.
  it('a replayed poll is 409, whatever its args and whoever owns the job', async () => {
    const invalid = signed('poll_job', { job_id: 42 });
    const mine = { request: invalid, secret: secrets.k1 };
    expectRefusal(await post('/trpc/poll_job', invalid), 400, 'INVALID_ARGS', mine);
    expectRefusal(await post('/trpc/poll_job', invalid), 409, 'REPLAYED_NONCE', mine);

    const start = signed('start_long_task', { seconds: 1, payload: { n: 1 } });
    const jobId = expectAnswer(await post('/trpc/start_long_task', start), start).result?.job_id;
    const poll = signed('poll_job', { job_id: jobId });
    expect(expectAnswer(await post('/trpc/poll_job', poll), poll).status).not.toBe('error');
    expectRefusal(await post('/trpc/poll_job', poll), 409, 'REPLAYED_NONCE', {
      request: poll,
      secret: secrets.k1,
    });

    const foreign = sign(
      envelope('poll_job', { job_id: jobId }, { client_id: 'client-002', kid: 'k1' }),
      secrets.client2,
    ) as RequestEnvelope;
    const theirs = { request: foreign, secret: secrets.client2 };
    expectRefusal(await post('/trpc/poll_job', foreign), 404, 'JOB_NOT_FOUND', theirs);
    expectRefusal(await post('/trpc/poll_job', foreign), 409, 'REPLAYED_NONCE', theirs);
  });

  it('GET on a mutation is 405 METHOD_NOT_ALLOWED', async () => {
    const input = encodeURIComponent(JSON.stringify(signed('batch_sum', { numbers: [1] })));
    expectRefusal(
      await post(`/trpc/batch_sum?input=${input}`, undefined, { method: 'GET' }),
      405,
      'METHOD_NOT_ALLOWED',
    );
  });

  it('a body that is not application/json is 415, and its nonce is not spent', async () => {
    const request = signed('batch_sum', { numbers: [2] });
    expectRefusal(
      await post('/trpc/batch_sum', request, { contentType: 'text/plain' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectAnswer(await post('/trpc/batch_sum', request), request);
  });

  it('a body that is not JSON is 400 PARSE_ERROR', async () => {
    expectRefusal(await post('/trpc/batch_sum', '{"v":"mcp/0.1",'), 400, 'PARSE_ERROR');
  });

  it('a body over 1 MiB is 413 PAYLOAD_TOO_LARGE, declared or streamed', async () => {
    // Refused before it is parsed, so the padding need not be signed.
    const text = JSON.stringify({
      ...signed('batch_sum', { numbers: [1] }),
      pad: 'x'.repeat(1024 * 1024),
    });
    const body = Buffer.from(text);
    const declared = await rawPost('/trpc/batch_sum', [body], {
      'content-type': 'application/json',
      'content-length': body.length,
    });
    expectRefusal(asReply(declared), 413, 'PAYLOAD_TOO_LARGE');
    // No content-length: chunked, in pieces, so the limit must be enforced while reading.
    const pieces: Buffer[] = [];
    for (let at = 0; at < body.length; at += 64 * 1024) pieces.push(body.subarray(at, at + 65536));
    const streamed = await rawPost('/trpc/batch_sum', pieces, {
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
    });
    expectRefusal(asReply(streamed), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('batched calls are refused with 400', async () => {
    const first = signed('batch_sum', { numbers: [1] });
    const second = signed('server_identity', {});
    const both = await post('/trpc/batch_sum,server_identity?batch=1', { 0: first, 1: second });
    expect(both.status).toBe(400);
    expect(both.body.result).toBeUndefined();
    expect(both.body.error?.data.envelope).toBeUndefined();
    const one = await post('/trpc/batch_sum?batch=1', { 0: signed('batch_sum', { numbers: [1] }) });
    expect(one.status).toBe(400);
    expect(one.body.result).toBeUndefined();
    // The refused batch spent nothing: the same signed call still goes through on its own.
    expectAnswer(await post('/trpc/batch_sum', first), first);
  });

  it('a job start retried with the same request_id returns the same job; other args are 409', async () => {
    const requestId = randomUUID();
    const args = { seconds: 1, payload: { a: 1 } };
    const first = signed('start_long_task', args, { request_id: requestId });
    const started = expectAnswer(await post('/trpc/start_long_task', first), first);
    expect(started.status).toBe('accepted');
    const jobId = started.result?.job_id;
    expect(jobId).toEqual(expect.any(String));

    const retry = signed('start_long_task', args, { request_id: requestId });
    expect(retry.nonce).not.toBe(first.nonce);
    const again = expectAnswer(await post('/trpc/start_long_task', retry), retry);
    expect(again.result).toEqual({ job_id: jobId });

    const other = signed(
      'start_long_task',
      { seconds: 1, payload: { a: 2 } },
      { request_id: requestId },
    );
    expectRefusal(await post('/trpc/start_long_task', other), 409, 'REQUEST_ID_REUSED', {
      request: other,
      secret: secrets.k1,
    });
  });
});

// ---- a tampering proxy ---------------------------------------------------------------------

interface Proxy {
  url: string;
  close(): Promise<void>;
}

/** Forwards every call to the app, passing each response body through `rewrite` on the way back. */
async function startProxy(rewrite: (body: string, path: string) => string): Promise<Proxy> {
  const proxy: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', async () => {
      try {
        const upstream = await fetch(`${server.url}${req.url}`, {
          method: req.method ?? 'POST',
          headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
          ...(req.method === 'GET' ? {} : { body: Buffer.concat(parts) }),
        });
        const body = rewrite(await upstream.text(), req.url ?? '');
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      } catch {
        res.writeHead(502).end();
      }
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        proxy.closeAllConnections();
      }),
  };
}

describe('responses tampered with in transit', () => {
  let proxy: Proxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('a rewritten result is refused as BAD_RESPONSE_SIGNATURE, never returned', async () => {
    let rewritten = 0;
    proxy = await startProxy((body) => {
      if (!body.includes('"total":6')) return body;
      rewritten++;
      return body.replace('"total":6', '"total":7');
    });
    const client = typedClient({ url: proxy.url });
    // Untouched answers pass through the proxy as they are.
    await expect(client.batch_sum.mutate({ numbers: [1, 2] })).resolves.toEqual({
      count: 2,
      total: 3,
    });
    const error = await rejectionOf(client.batch_sum.mutate({ numbers: [1, 2, 3] }));
    expect(rewritten).toBe(1);
    expect(signetReason(error)).toBe('BAD_RESPONSE_SIGNATURE');
  });

  it('a rewritten signed refusal is refused as BAD_RESPONSE_SIGNATURE', async () => {
    let rewritten = 0;
    proxy = await startProxy((body) => {
      if (!body.includes('"code":"INVALID_ARGS"')) return body;
      rewritten++;
      return body.replace('"code":"INVALID_ARGS"', '"code":"TOOL_FAILED"');
    });
    const error = await rejectionOf(
      typedClient({ url: proxy.url }).batch_sum.mutate({ numbers: [] }),
    );
    expect(rewritten).toBe(1);
    expect(signetReason(error)).toBe('BAD_RESPONSE_SIGNATURE');
  });

  it('a refusal whose reason disagrees with its signed envelope is refused', async () => {
    // Regression: the client verified the envelope but reported the unsigned `data.reason`.
    let rewritten = 0;
    proxy = await startProxy((body) => {
      if (!body.includes('"reason":"INVALID_ARGS"')) return body;
      rewritten++;
      return body.replace('"reason":"INVALID_ARGS"', '"reason":"TOOL_NOT_ALLOWED"');
    });
    const error = await rejectionOf(
      typedClient({ url: proxy.url }).batch_sum.mutate({ numbers: [] }),
    );
    expect(rewritten).toBe(1);
    expect(signetReason(error)).toBe('BAD_RESPONSE_ENVELOPE');
  });

  it('the same holds for a refusal streamed by watch_job', async () => {
    let rewritten = 0;
    proxy = await startProxy((body) => {
      if (!body.includes('"reason":"JOB_NOT_FOUND"')) return body;
      rewritten++;
      return body.replace('"reason":"JOB_NOT_FOUND"', '"reason":"TOOL_NOT_ALLOWED"');
    });
    const client = typedClient({ url: proxy.url });
    const error = await rejectionOf(jobHandle(client, { job_id: randomUUID() }).result());
    expect(rewritten).toBe(1);
    expect(signetReason(error)).toBe('BAD_RESPONSE_ENVELOPE');
  });

  it('a valid response to another request is refused as RESPONSE_MISMATCH', async () => {
    let captured: string | undefined;
    let replayed = 0;
    proxy = await startProxy((body, path) => {
      if (!path.startsWith('/trpc/batch_sum')) return body;
      if (captured === undefined) {
        captured = body;
        return body;
      }
      replayed++;
      return captured;
    });
    const client = typedClient({ url: proxy.url });
    await expect(client.batch_sum.mutate({ numbers: [1, 2, 3] })).resolves.toEqual({
      count: 3,
      total: 6,
    });
    // The same question again: the old answer is correctly signed, but answers the old nonce.
    const error = await rejectionOf(client.batch_sum.mutate({ numbers: [1, 2, 3] }));
    expect(replayed).toBe(1);
    expect(signetReason(error)).toBe('RESPONSE_MISMATCH');
  });
});

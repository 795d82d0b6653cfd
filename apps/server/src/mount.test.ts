// The README's example "Mounting Signet in your own tRPC server", run: the Signet router served
// by tRPC's own adapters (fetch, then standalone) at `/trpc`, beside an app's own unsigned tRPC
// router at `/api`, on one node:http server, called with the real `@trpc/client` and Signet's
// link. The code between the two "README" rules is the README's (without its imports), with only
// the keyring, the store's path, the logger, a rate limit and the listening changed: keep the two
// the same.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createSignetClient, jobHandle, signetReason, signRequest } from '@signet/client';
import {
  createSignet,
  errorShape,
  generateSecret,
  Keyring,
  SignetError,
  type SignetRouter,
} from '@signet/server';
import { SqliteStore } from '@signet/server/sqlite';
import { postEnvelope } from '@signet/server/testing';
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import { initTRPC, type TRPCError } from '@trpc/server';
import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import { incomingMessageToRequest } from '@trpc/server/adapters/node-http';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { tools } from './tools/contracts.ts';
import { createHandlers } from './tools/handlers.ts';

const SERVER_ID = 'mcp-server-001';
const secrets = { agent: generateSecret(), hasty: generateSecret() };
const keyring = Keyring.parse({
  server_id: SERVER_ID,
  clients: [
    { client_id: 'client-001', keys: [{ kid: 'k1', secret: secrets.agent }] },
    { client_id: 'hasty', keys: [{ kid: 'k1', secret: secrets.hasty }] },
  ],
});
const dir = mkdtempSync(join(tmpdir(), 'signet-mount-'));

// ---- README ---------------------------------------------------------------------------------

const MAX_BODY_BYTES = 1_048_576;

const signet = await createSignet({
  contracts: tools,
  handlers: createHandlers(),
  keyring: () => keyring,
  store: new SqliteStore(join(dir, 'signet.db')),
  logger: pino({ level: 'silent' }),
  // (Test only: a small budget, so that a 429 can be provoked.)
  rateLimit: { perSecond: 1, burst: 10 },
});

// The app's own tRPC router: unsigned, served at its own endpoint.
const t = initTRPC.create();
const appRouter = t.router({
  greet: t.procedure.input(z.object({ name: z.string() })).query(({ input }) => `hi ${input.name}`),
});

// What a Signet router needs from any adapter: its context, one call per request, and a
// Retry-After on 429.
const signetOptions = {
  router: signet.router,
  createContext: signet.createContext,
  allowBatching: false,
  responseMeta: ({ errors }: { errors: TRPCError[] }) => {
    for (const error of errors) {
      if (error instanceof SignetError && error.retryAfter !== undefined) {
        return { headers: new Headers({ 'retry-after': String(error.retryAfter) }) };
      }
    }
    return {};
  },
};

// Check 1 accepts application/json alone (tRPC also parses multipart and octet-stream bodies).
const isJson = (type: string | null | undefined) =>
  type?.split(';', 1)[0]?.trim().toLowerCase() === 'application/json';
const notJson = {
  error: errorShape(new SignetError('UNSUPPORTED_MEDIA_TYPE', 'the body must be JSON'), undefined),
};

// With tRPC's fetch adapter (Node, Deno, Bun, workers, Next.js route handlers):
async function handle(req: Request): Promise<Response> {
  const { pathname } = new URL(req.url);
  if (pathname.startsWith('/trpc/')) {
    if (req.method === 'POST' && !isJson(req.headers.get('content-type'))) {
      return Response.json(notJson, { status: 415 });
    }
    return fetchRequestHandler({ ...signetOptions, endpoint: '/trpc', req });
  }
  if (pathname.startsWith('/api/')) {
    return fetchRequestHandler({ router: appRouter, endpoint: '/api', req });
  }
  return new Response('not found', { status: 404 });
}

// ... on node:http, whose requests tRPC turns into fetch Requests, with the body limit.
async function serveWithFetch(req: IncomingMessage, res: ServerResponse) {
  const request = incomingMessageToRequest(req, res, { maxBodySize: MAX_BODY_BYTES });
  const response = await handle(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  if (response.body) await pipeline(Readable.fromWeb(response.body), res);
  else res.end();
}
const fetchServer = createServer((req, res) => {
  serveWithFetch(req, res).catch(() => res.destroy());
});

// Or with tRPC's standalone adapter:
const signetHandler = createHTTPHandler({
  ...signetOptions,
  basePath: '/trpc/',
  maxBodySize: MAX_BODY_BYTES,
  middleware: (req, res, next) => {
    if (req.method !== 'POST' || isJson(req.headers['content-type'])) return next();
    res.writeHead(415, { 'content-type': 'application/json' }).end(JSON.stringify(notJson));
  },
});
const appHandler = createHTTPHandler({ router: appRouter, basePath: '/api/' });
const standaloneServer = createServer((req, res) =>
  (req.url?.startsWith('/trpc/') ? signetHandler : appHandler)(req, res),
);

// ---- end of README ---------------------------------------------------------------------------

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}

const urls = { fetch: '', standalone: '' };

beforeAll(async () => {
  urls.fetch = await listen(fetchServer);
  urls.standalone = await listen(standaloneServer);
});

afterAll(async () => {
  await Promise.all([close(fetchServer), close(standaloneServer)]);
  await signet.close({ graceMs: 0 });
  rmSync(dir, { recursive: true, force: true });
});

function signetClient(url: string, clientId: 'client-001' | 'hasty', fetchFn?: typeof fetch) {
  return createSignetClient<SignetRouter<typeof tools>>({
    url,
    serverId: SERVER_ID,
    clientId,
    key: { kid: 'k1', secret: clientId === 'hasty' ? secrets.hasty : secrets.agent },
    ...(fetchFn ? { fetch: fetchFn } : {}),
  });
}

/** Why a call failed: its reason code (undefined if it did not fail). */
async function reasonOf(call: Promise<unknown>) {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(TRPCClientError);
    return signetReason(error);
  }
  return undefined;
}

/** A POST of `body` to `tool` at `url`, as `type` (none: fetch's own): status and reason. */
async function post(
  url: string,
  tool: string,
  body: string | FormData,
  type: string | null = null,
) {
  const reply = await postEnvelope(url, tool, body, { contentType: type });
  return { status: reply.status, reason: reply.json?.error?.data.reason };
}

describe.each(['fetch', 'standalone'] as const)("tRPC's %s adapter", (adapter) => {
  it("serves the app's own router beside Signet's", async () => {
    const app = createTRPCClient<typeof appRouter>({
      links: [httpLink({ url: `${urls[adapter]}/api` })],
    });
    expect(await app.greet.query({ name: 'ada' })).toBe('hi ada');
  });

  it('serves signed tool calls, jobs and refusals to the typed client', async () => {
    const client = signetClient(urls[adapter], 'client-001');
    expect(await client.batch_sum.mutate({ numbers: [1, 2, 3] })).toEqual({ count: 3, total: 6 });

    // A job: started, then followed to its output over watch_job's SSE stream, which the
    // adapter serves (job.watch(), unlike job.result(), never falls back to polling).
    const job = jobHandle(
      client,
      await client.start_long_task.mutate({ seconds: 1, payload: { via: adapter } }),
    );
    const states = [];
    for await (const state of job.watch()) states.push(state);
    expect(states.at(-1)).toMatchObject({ status: 'done', output: { via: adapter } });
    expect(states.some((state) => state.status === 'running' && state.progress)).toBe(true);

    // A refusal reaches the client with its reason code, signed (the link verified it).
    expect(await reasonOf(client.batch_sum.mutate({ numbers: [] }))).toBe('INVALID_ARGS');
  });

  it('makes the checks that are the app’s own under a foreign adapter', async () => {
    const url = urls[adapter];
    const form = new FormData();
    form.set('v', 'mcp/0.1');
    expect(await post(url, 'batch_sum', form)).toEqual({
      status: 415,
      reason: 'UNSUPPORTED_MEDIA_TYPE',
    });
    expect(await post(url, 'batch_sum', '{}', 'application/octet-stream')).toEqual({
      status: 415,
      reason: 'UNSUPPORTED_MEDIA_TYPE',
    });
    expect(
      await post(url, 'batch_sum', 'x'.repeat(MAX_BODY_BYTES + 1), 'application/json'),
    ).toEqual({
      status: 413,
      reason: 'PAYLOAD_TOO_LARGE',
    });
    expect(await post(url, 'batch_sum,batch_sum?batch=1', '{}', 'application/json')).toEqual({
      status: 400,
      reason: 'BAD_ENVELOPE',
    });
    // Nesting depth stays Signet's own check: the adapter parses, Signet refuses past 64 levels.
    const deep = `{"args":${'['.repeat(100)}${']'.repeat(100)}}`;
    expect(await post(url, 'batch_sum', deep, 'application/json')).toEqual({
      status: 400,
      reason: 'PARSE_ERROR',
    });
  });
});

it('answers a rate-limited call with 429 and Retry-After', async () => {
  let retryAfter: string | null = null;
  const recording: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (response.status === 429) retryAfter = response.headers.get('retry-after');
    return response;
  };
  const client = signetClient(urls.fetch, 'hasty', recording);
  let reason: string | undefined;
  // The budget is 10 calls at once, 1 more a second: a refusal comes within a few calls more.
  for (let i = 0; i < 30 && reason === undefined; i++) {
    reason = await reasonOf(client.server_identity.mutate({}));
  }
  expect(reason).toBe('RATE_LIMITED');
  expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
});

it("is not served nested in an app's router: the path changes, and the root formats errors", async () => {
  const nested = t.router({ signet: signet.router });
  const envelope = signRequest(
    { serverId: SERVER_ID, clientId: 'client-001', key: { kid: 'k1', secret: secrets.agent } },
    'batch_sum',
    { numbers: [1, 2] },
    { now: Date.now() },
  );
  const response = await fetchRequestHandler({
    router: nested,
    endpoint: '/api',
    createContext: signet.createContext,
    req: new Request('http://app.test/api/signet.batch_sum', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(envelope),
    }),
  });
  const { error } = (await response.json()) as { error: { message: string; data: object } };
  expect(response.status).toBe(400);
  // TOOL_MISMATCH's message, with none of Signet's error data: no reason, no signed envelope.
  expect(error.message).toBe('the envelope names another tool than the URL');
  expect(error.data).not.toHaveProperty('reason');
  expect(error.data).not.toHaveProperty('envelope');
});

// Users' own tRPC middleware, added through `middleware: [...]` (README, "Your own tRPC
// middleware"): it runs inside every Signet procedure, watch_job included, once the call is
// authenticated and its nonce spent, and whatever it throws reaches the client as a signed
// refusal with a reason code.
import { createSignetClient, jobHandle, signetReason } from '@signet/client';
import { type ResponseEnvelope, verify } from '@signet/protocol';
import {
  generateSecret,
  Keyring,
  MemoryStore,
  type RunningSignetServer,
  SignetError,
  type SignetMiddleware,
  type SignetRouter,
  startSignetServer,
} from '@signet/server';
import { postEnvelope, signedRequest } from '@signet/server/testing';
import { TRPCError } from '@trpc/server';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Tools, tools } from './tools/contracts.ts';
import { createHandlers } from './tools/handlers.ts';

const SERVER_ID = 'middleware-server';
const secrets = { alice: generateSecret(), mallory: generateSecret() };
const keyring = Keyring.parse({
  server_id: SERVER_ID,
  clients: [
    { client_id: 'alice', keys: [{ kid: 'k1', secret: secrets.alice }] },
    { client_id: 'mallory', keys: [{ kid: 'k1', secret: secrets.mallory }] },
  ],
});

/** What the recording middleware saw: one entry per call that reached it. */
const seen: Array<{ path: string; type: string; clientId: string; kid: string; tool: string }> = [];

const recorder: SignetMiddleware = async ({ ctx, path, type, next }) => {
  seen.push({
    path,
    type,
    clientId: ctx.signet.clientId,
    kid: ctx.signet.kid,
    tool: ctx.signet.tool,
  });
  return next();
};

/** Refuses mallory, in a way chosen by the batch she asks to sum. */
const policy: SignetMiddleware = async ({ ctx, path, next }) => {
  if (ctx.signet.clientId !== 'mallory' || path !== 'batch_sum') return next();
  const [first] = (ctx.signet.envelope.args as { numbers?: unknown[] }).numbers ?? [];
  switch (first) {
    case 1:
      throw new TRPCError({ code: 'FORBIDDEN', message: 'mallory may not add' });
    case 2:
      throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: 'mallory adds too much' });
    case 3:
      throw new TRPCError({ code: 'BAD_REQUEST', message: 'mallory adds badly' });
    case 4:
      throw new SignetError('JOB_NOT_FOUND', 'a reason of Signet’s own is kept');
    default:
      throw new Error('a secret internal detail');
  }
};

let server: RunningSignetServer<Tools>;

beforeAll(async () => {
  server = await startSignetServer({
    contracts: tools,
    handlers: createHandlers(),
    keyring: () => keyring,
    store: new MemoryStore(),
    logger: pino({ level: 'silent' }),
    middleware: [recorder, policy],
  });
});

afterAll(async () => {
  await server?.close({ graceMs: 0 });
});

function clientFor(clientId: 'alice' | 'mallory') {
  return createSignetClient<SignetRouter<Tools>>({
    url: server.url,
    serverId: SERVER_ID,
    clientId,
    key: { kid: 'k1', secret: secrets[clientId] },
  });
}

const mallory = { serverId: SERVER_ID, clientId: 'mallory', kid: 'k1', secret: secrets.mallory };

/** POSTs a request envelope that mallory signed; the reply's status and error, and a resend. */
async function postAsMallory(tool: string, args: Record<string, unknown>) {
  const request = signedRequest(mallory, tool, args);
  const send = () => postEnvelope(server.url, tool, request);
  const reply = await send();
  return {
    request,
    status: reply.status,
    retryAfter: reply.headers.get('retry-after'),
    error: reply.json!.error!,
    send,
  };
}

describe('users’ middleware (the `middleware` option)', () => {
  it('runs on every tool call and on watch_job, and sees the verified client', async () => {
    seen.length = 0;
    const alice = clientFor('alice');
    await alice.server_identity.mutate({});
    await expect(alice.batch_sum.mutate({ numbers: [1, 2] })).resolves.toEqual({
      count: 2,
      total: 3,
    });
    const ticket = await alice.start_long_task.mutate({ seconds: 1, payload: { n: 1 } });
    // result() follows the job over watch_job (an SSE subscription).
    await expect(jobHandle(alice, ticket).result()).resolves.toEqual({ n: 1 });
    await alice.poll_job.mutate({ job_id: ticket.job_id });
    await alice.cancel_job.mutate({ job_id: ticket.job_id });

    const tools = new Set(seen.map((entry) => entry.path));
    expect(tools).toEqual(
      new Set([
        'server_identity',
        'batch_sum',
        'start_long_task',
        'watch_job',
        'poll_job',
        'cancel_job',
      ]),
    );
    expect(seen.find((entry) => entry.path === 'watch_job')?.type).toBe('subscription');
    for (const entry of seen) {
      expect(entry).toMatchObject({ clientId: 'alice', kid: 'k1', tool: entry.path });
    }
  });

  it('does not run for a call that fails authentication', async () => {
    seen.length = 0;
    const forger = createSignetClient<SignetRouter<Tools>>({
      url: server.url,
      serverId: SERVER_ID,
      clientId: 'alice',
      key: { kid: 'k1', secret: generateSecret() },
    });
    const error = await forger.batch_sum.mutate({ numbers: [1] }).catch((e: unknown) => e);
    expect(signetReason(error)).toBe('BAD_SIGNATURE');
    expect(seen).toEqual([]);
  });

  it('refuses with a signed envelope, after the nonce is spent and before the args check', async () => {
    const refused = await postAsMallory('batch_sum', { numbers: [1] });
    expect(refused.status).toBe(403);
    expect(refused.error.data.reason).toBe('TOOL_NOT_ALLOWED');
    const envelope = refused.error.data.envelope as ResponseEnvelope;
    expect(verify(envelope, secrets.mallory)).toBe(true);
    expect(envelope).toMatchObject({
      ok: false,
      status: 'error',
      request_id: refused.request.request_id,
      nonce: refused.request.nonce,
      error: { code: 'TOOL_NOT_ALLOWED', message: 'mallory may not add' },
    });
    // The nonce was spent before the middleware ran.
    const replay = await refused.send();
    expect(replay.status).toBe(409);
    // The middleware runs before the args are checked: invalid args get its refusal.
    const invalid = await postAsMallory('batch_sum', { numbers: [1], extra: true });
    expect(invalid.error.data.reason).toBe('TOOL_NOT_ALLOWED');
    // Through the typed client, the refusal's reason.
    const error = await clientFor('mallory')
      .batch_sum.mutate({ numbers: [1] })
      .catch((e: unknown) => e);
    expect(signetReason(error)).toBe('TOOL_NOT_ALLOWED');
  });

  it('maps tRPC codes to reason codes, keeps a SignetError’s, and hides anything else', async () => {
    const cases: Array<[number, number, string]> = [
      [2, 429, 'RATE_LIMITED'],
      [3, 400, 'INVALID_ARGS'],
      [4, 404, 'JOB_NOT_FOUND'],
      [5, 500, 'INTERNAL'],
    ];
    for (const [first, status, reason] of cases) {
      const refused = await postAsMallory('batch_sum', { numbers: [first] });
      expect(refused.status, reason).toBe(status);
      expect(refused.retryAfter, reason).toBe(status === 429 ? '1' : null);
      expect(refused.error.data.reason).toBe(reason);
      const envelope = refused.error.data.envelope as ResponseEnvelope;
      expect(verify(envelope, secrets.mallory), reason).toBe(true);
      expect(envelope.error?.code).toBe(reason);
      expect(JSON.stringify(refused.error)).not.toContain('secret internal detail');
    }
    // Other tools, and other clients, pass the policy.
    await expect(clientFor('mallory').server_identity.mutate({})).resolves.toMatchObject({
      server_id: SERVER_ID,
    });
  });
});

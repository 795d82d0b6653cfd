// End to end over real HTTP with an Ed25519 client (DESIGN 1.3): the typed client, holding its
// private key and the server's pinned public key, against the app as `pnpm serve` starts it.
// Every tool works (watch_job included), the refusals get their status and reason and are signed
// with the server key, and a response signed by any key but a pinned server key is refused.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSignetClient, jobHandle, signetReason } from '@signet/client';
import {
  ed25519PrivateKey,
  ed25519PublicKey,
  generateEd25519KeyPair,
  type KeyringFile,
  type RequestEnvelope,
  type ResponseEnvelope,
  sign,
  verify,
} from '@signet/protocol';
import { generateSecret } from '@signet/server';
import { requestEnvelope, watchUrl } from '@signet/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppServer } from './app.ts';
import {
  apps,
  expectOk,
  expectRefusal,
  post,
  type Router,
  rejectionOf,
  SERVER_ID,
  startTestApp,
  writeKeyring,
} from './testing/http.ts';

const serverKey = generateEd25519KeyPair();
const otherServerKey = generateEd25519KeyPair();
const clientKey = generateEd25519KeyPair();
const limitedKey = generateEd25519KeyPair();
const strangerKey = generateEd25519KeyPair();
const hmacSecret = generateSecret();

const ED = { clientId: 'ed-client', kid: 'e1' };
const serverPublic = ed25519PublicKey(serverKey.publicKey);
const clientPrivate = ed25519PrivateKey(clientKey.privateKey);

function keyringWith(serverPrivateKey: string): KeyringFile {
  return {
    server_id: SERVER_ID,
    clients: [
      {
        client_id: ED.clientId,
        keys: [{ kid: ED.kid, alg: 'ed25519', public_key: clientKey.publicKey }],
      },
      {
        client_id: 'ed-limited',
        tools: ['server_identity'],
        keys: [{ kid: 'e1', alg: 'ed25519', public_key: limitedKey.publicKey }],
      },
      { client_id: 'hmac-client', keys: [{ kid: 'k1', secret: hmacSecret }] },
    ],
    server_keys: [{ kid: 's1', alg: 'ed25519', private_key: serverPrivateKey }],
  };
}

let server: AppServer;
let keyringPath: string;

beforeAll(async () => {
  keyringPath = writeKeyring(keyringWith(serverKey.privateKey));
  server = await startTestApp(keyringPath);
  apps.splice(apps.indexOf(server), 1); // (kept for the whole file)
});
afterAll(() => server.close({ graceMs: 0 }));

function client(
  opts: {
    url?: string;
    clientId?: string;
    privateKey?: string;
    serverKeys?: Array<{ kid: string; publicKey: string }>;
    fetch?: typeof fetch;
    now?: () => number;
  } = {},
) {
  return createSignetClient<Router>({
    url: opts.url ?? server.url,
    serverId: SERVER_ID,
    clientId: opts.clientId ?? ED.clientId,
    key: { kid: ED.kid, alg: 'ed25519', privateKey: opts.privateKey ?? clientKey.privateKey },
    serverKeys: opts.serverKeys ?? [{ kid: 's1', publicKey: serverKey.publicKey }],
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
}

/** A request envelope from the Ed25519 client, signed with its private key. */
function signed(
  tool: string,
  args: Record<string, unknown>,
  over: Record<string, unknown> = {},
  by = clientPrivate,
): RequestEnvelope {
  const draft = requestEnvelope(
    { serverId: SERVER_ID, clientId: ED.clientId, kid: ED.kid, secret: by },
    tool,
    args,
    over,
  );
  return sign(draft, by) as RequestEnvelope;
}

const byServer = { secret: serverPublic };
const signedFor = (request: RequestEnvelope) => ({
  request,
  secret: serverPublic,
  serverId: SERVER_ID,
});

/** Asserts an answer signed by server key s1, naming it in `kid`. */
function expectServerSigned(envelope: ResponseEnvelope | undefined) {
  expect(envelope?.kid).toBe('s1');
  expect(envelope?.signature).toMatch(/^[0-9a-f]{128}$/);
  expect(verify(envelope!, serverPublic)).toBe(true);
}

describe('an Ed25519 client through the typed client', () => {
  it('server_identity publishes the server key', async () => {
    const identity = await client().server_identity.mutate({});
    expect(identity.server_id).toBe(SERVER_ID);
    expect(identity.capabilities.server_keys).toEqual([
      { kid: 's1', alg: 'ed25519', public_key: serverKey.publicKey },
    ]);
  });

  it('batch_sum and list_tools answer', async () => {
    await expect(client().batch_sum.mutate({ numbers: [1, 2, 3.5] })).resolves.toEqual({
      count: 3,
      total: 6.5,
    });
    const manifest = (await client().list_tools.mutate({})) as { tools: unknown[] };
    expect(manifest.tools.length).toBeGreaterThan(0);
  });

  it('a job runs to its output over watch_job, and poll_job and cancel_job answer', async () => {
    const c = client();
    const payload = { a: 1, nested: ['two', null] };
    const ticket = await c.start_long_task.mutate({ seconds: 1, payload });
    const statuses: string[] = [];
    for await (const state of jobHandle(c, ticket).watch()) statuses.push(state.status);
    expect(statuses.at(-1)).toBe('done');
    await expect(jobHandle(c, ticket).result()).resolves.toEqual(payload);
    await expect(c.poll_job.mutate({ job_id: ticket.job_id })).resolves.toMatchObject({
      status: 'done',
      output: payload,
    });
    await expect(c.cancel_job.mutate({ job_id: ticket.job_id })).resolves.toMatchObject({
      status: 'done',
    });
    const second = await c.start_long_task.mutate({ seconds: 20, payload: {} });
    await expect(c.cancel_job.mutate({ job_id: second.job_id })).resolves.toMatchObject({
      status: 'cancelled',
    });
  });

  it('every watch_job event is signed with the server key and names it', async () => {
    const start = signed('start_long_task', { seconds: 1, payload: { w: 1 } });
    const started = expectOk(await post(server.url, 'start_long_task', start), start, byServer);
    expectServerSigned(started);
    const watch = signed('watch_job', { job_id: started.result!.job_id });
    const text = await (await fetch(watchUrl(server.url, watch))).text();
    const events = text
      .split('\n')
      .filter((line) => line.startsWith('data: {"error"'))
      .map((line) => JSON.parse(line.slice(6)));
    expect(events.length).toBeGreaterThan(0);
    for (const event of events) {
      expectServerSigned(event);
      expect(event.nonce).toBe(watch.nonce);
    }
    expect(events.at(-1)!.status).toBe('done');
  });

  it('a refusal is reported with its reason', async () => {
    expect(signetReason(await rejectionOf(client().batch_sum.mutate({ numbers: [] })))).toBe(
      'INVALID_ARGS',
    );
    const limited = client({ clientId: 'ed-limited', privateKey: limitedKey.privateKey });
    await expect(limited.server_identity.mutate({})).resolves.toMatchObject({
      server_id: SERVER_ID,
    });
    expect(signetReason(await rejectionOf(limited.batch_sum.mutate({ numbers: [1] })))).toBe(
      'TOOL_NOT_ALLOWED',
    );
  });

  it('a clock off by more than the window is corrected from a signed STALE_REQUEST', async () => {
    const skewed = client({ now: () => Date.now() + 400_000 });
    await expect(skewed.batch_sum.mutate({ numbers: [1] })).resolves.toEqual({
      count: 1,
      total: 1,
    });
  });
});

describe('Ed25519 envelopes over raw HTTP (DESIGN 1.4 / 1.5)', () => {
  it('a signed call is answered with an envelope signed by the server key, kid s1', async () => {
    const request = signed('batch_sum', { numbers: [1, 2] });
    const data = expectOk(await post(server.url, 'batch_sum', request), request, byServer);
    expectServerSigned(data);
    expect(data.result).toEqual({ count: 2, total: 3 });
  });

  it('without kid, the client key is still found', async () => {
    const request = signed('batch_sum', { numbers: [4] }, { kid: undefined });
    expectServerSigned(expectOk(await post(server.url, 'batch_sum', request), request, byServer));
  });

  it('a wrong key, or an unknown client, is 401 BAD_SIGNATURE, with nothing signed', async () => {
    const stranger = ed25519PrivateKey(strangerKey.privateKey);
    const wrong = signed('batch_sum', { numbers: [1] }, {}, stranger);
    const wrongReply = await post(server.url, 'batch_sum', wrong);
    expectRefusal(wrongReply, 401, 'BAD_SIGNATURE');
    const unknown = signed('batch_sum', { numbers: [1] }, { client_id: 'nobody' });
    const unknownReply = await post(server.url, 'batch_sum', unknown);
    expectRefusal(unknownReply, 401, 'BAD_SIGNATURE');
    expect(unknownReply.json).toEqual(wrongReply.json);
    // An HMAC signature for an Ed25519 client, or a kid naming no key, verifies under nothing.
    const hmac = sign(signed('batch_sum', { numbers: [1] }), clientKey.privateKey);
    expectRefusal(await post(server.url, 'batch_sum', hmac), 401, 'BAD_SIGNATURE');
    const otherKid = signed('batch_sum', { numbers: [1] }, { kid: 'e2' });
    expectRefusal(await post(server.url, 'batch_sum', otherKid), 401, 'BAD_SIGNATURE');
  });

  it('another server_id is 401 WRONG_SERVER, signed', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { server_id: 'mcp-server-002' });
    const error = expectRefusal(
      await post(server.url, 'batch_sum', request),
      401,
      'WRONG_SERVER',
      signedFor(request),
    );
    expectServerSigned(error.data.envelope);
  });

  it('a stale ts_ms is 401 STALE_REQUEST, signed', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { ts_ms: Date.now() - 301_000 });
    const error = expectRefusal(
      await post(server.url, 'batch_sum', request),
      401,
      'STALE_REQUEST',
      signedFor(request),
    );
    expectServerSigned(error.data.envelope);
  });

  it('a replayed request is 409 REPLAYED_NONCE, signed', async () => {
    const request = signed('batch_sum', { numbers: [1, 1] });
    expectOk(await post(server.url, 'batch_sum', request), request, byServer);
    const error = expectRefusal(
      await post(server.url, 'batch_sum', request),
      409,
      'REPLAYED_NONCE',
      signedFor(request),
    );
    expectServerSigned(error.data.envelope);
  });

  it('invalid args are 400 INVALID_ARGS, a forbidden tool 403, both signed', async () => {
    const invalid = signed('batch_sum', { numbers: [] });
    const error = expectRefusal(
      await post(server.url, 'batch_sum', invalid),
      400,
      'INVALID_ARGS',
      signedFor(invalid),
    );
    expectServerSigned(error.data.envelope);
    const limited = sign(
      requestEnvelope(
        { serverId: SERVER_ID, clientId: 'ed-limited', kid: 'e1', secret: '' },
        'batch_sum',
        {
          numbers: [1],
        },
      ),
      ed25519PrivateKey(limitedKey.privateKey),
    ) as RequestEnvelope;
    expectServerSigned(
      expectRefusal(
        await post(server.url, 'batch_sum', limited),
        403,
        'TOOL_NOT_ALLOWED',
        signedFor(limited),
      ).data.envelope,
    );
  });

  it('an unknown job is 404 JOB_NOT_FOUND, a reused request_id 409, both signed', async () => {
    const poll = signed('poll_job', { job_id: randomUUID() });
    expectServerSigned(
      expectRefusal(await post(server.url, 'poll_job', poll), 404, 'JOB_NOT_FOUND', signedFor(poll))
        .data.envelope,
    );
    const requestId = randomUUID();
    const first = signed(
      'start_long_task',
      { seconds: 1, payload: { a: 1 } },
      { request_id: requestId },
    );
    expectOk(await post(server.url, 'start_long_task', first), first, byServer);
    const other = signed(
      'start_long_task',
      { seconds: 1, payload: { a: 2 } },
      { request_id: requestId },
    );
    expectServerSigned(
      expectRefusal(
        await post(server.url, 'start_long_task', other),
        409,
        'REQUEST_ID_REUSED',
        signedFor(other),
      ).data.envelope,
    );
  });

  it('an unknown tool is 404 UNKNOWN_TOOL', async () => {
    const request = signed('no_such_tool', {});
    expectRefusal(await post(server.url, 'no_such_tool', request), 404, 'UNKNOWN_TOOL');
  });

  it("an HMAC client's answers are unchanged: HMAC-signed, no kid", async () => {
    const request = sign(
      requestEnvelope(
        { serverId: SERVER_ID, clientId: 'hmac-client', kid: 'k1', secret: hmacSecret },
        'batch_sum',
        {
          numbers: [1],
        },
      ),
      hmacSecret,
    ) as RequestEnvelope;
    const data = expectOk(await post(server.url, 'batch_sum', request), request, {
      secret: hmacSecret,
    });
    expect(data.kid).toBeUndefined();
    expect(data.signature).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('the client pins the server keys', () => {
  it('refuses answers from a server signing with another key', async () => {
    const impostor = await startTestApp(writeKeyring(keyringWith(otherServerKey.privateKey)));
    try {
      const error = await rejectionOf(
        client({ url: impostor.url }).batch_sum.mutate({ numbers: [1] }),
      );
      expect(signetReason(error)).toBe('BAD_RESPONSE_SIGNATURE');
      // The same for a signed refusal.
      const refused = await rejectionOf(
        client({ url: impostor.url }).batch_sum.mutate({ numbers: [] }),
      );
      expect(signetReason(refused)).toBe('BAD_RESPONSE_SIGNATURE');
    } finally {
      apps.splice(apps.indexOf(impostor), 1);
      await impostor.close({ graceMs: 0 });
    }
  });

  /** A fetch that re-signs every answer envelope with `resign`. */
  function tampering(resign: (unsigned: Record<string, unknown>) => object) {
    return (async (input: Parameters<typeof fetch>[0], init?: RequestInit) => {
      const response = await fetch(input, init);
      const body = (await response.json()) as { result?: { data?: Record<string, unknown> } };
      if (body.result?.data) {
        const { signature: _dropped, ...unsigned } = body.result.data;
        body.result.data = resign(unsigned) as Record<string, unknown>;
      }
      return new Response(JSON.stringify(body), {
        status: response.status,
        headers: { 'content-type': 'application/json' },
      });
    }) as typeof fetch;
  }

  it('refuses an answer signed by an unpinned key, without kid, or with HMAC', async () => {
    const other = ed25519PrivateKey(otherServerKey.privateKey);
    const server = ed25519PrivateKey(serverKey.privateKey);
    const resigns: Array<(u: Record<string, unknown>) => object> = [
      (u) => sign({ ...u, kid: 's1' }, other),
      (u) => sign({ ...u, kid: 's2' }, other),
      (u) => {
        const { kid: _kid, ...rest } = u;
        return sign(rest, server);
      },
      (u) => {
        const { kid: _kid, ...rest } = u;
        return sign(rest, clientKey.privateKey);
      },
      (u) => sign({ ...u, result: { count: 1, total: 99 } }, other),
    ];
    for (const resign of resigns) {
      const error = await rejectionOf(
        client({ fetch: tampering(resign) }).batch_sum.mutate({ numbers: [1] }),
      );
      expect(signetReason(error)).toBe('BAD_RESPONSE_SIGNATURE');
    }
    // The pinned key re-signing it is accepted: the tampering fetch itself is sound.
    await expect(
      client({ fetch: tampering((u) => sign(u, server)) }).batch_sum.mutate({
        numbers: [1],
      }),
    ).resolves.toEqual({ count: 1, total: 1 });
  });

  it('another pinned key list (not the server s1) refuses the real server', async () => {
    const error = await rejectionOf(
      client({ serverKeys: [{ kid: 's1', publicKey: otherServerKey.publicKey }] }).batch_sum.mutate(
        { numbers: [1] },
      ),
    );
    expect(signetReason(error)).toBe('BAD_RESPONSE_SIGNATURE');
  });

  it('the keyring file holds no private client key', () => {
    const text = readFileSync(keyringPath, 'utf8');
    expect(text).not.toContain(clientKey.privateKey);
    expect(text).not.toContain(limitedKey.privateKey);
    expect(text).toContain(clientKey.publicKey);
  });

  it('a client with an Ed25519 key and no server keys is refused at once', () => {
    expect(() =>
      createSignetClient<Router>({
        url: server.url,
        serverId: SERVER_ID,
        clientId: ED.clientId,
        key: { kid: ED.kid, alg: 'ed25519', privateKey: clientKey.privateKey },
      }),
    ).toThrow(/serverKeys/);
  });
});

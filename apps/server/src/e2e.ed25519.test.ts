import { readFileSync } from 'node:fs';
import { createSignetClient, jobHandle, signetReason } from '@signet/client';
import { ed25519PrivateKey, sign } from '@signet/protocol';
import { watchUrl } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import {
  byServer,
  client,
  clientKey,
  ED,
  edApp,
  expectServerSigned,
  keyringWith,
  limitedKey,
  otherServerKey,
  serverKey,
  signed,
  useEd25519App,
} from './testing/ed25519-app.ts';
import {
  apps,
  expectOk,
  post,
  type Router,
  rejectionOf,
  SERVER_ID,
  startTestApp,
  writeKeyring,
} from './testing/http.ts';

useEd25519App();

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
    const started = expectOk(await post(edApp.url, 'start_long_task', start), start, byServer);
    expectServerSigned(started);
    const watch = signed('watch_job', { job_id: started.result!.job_id });
    const text = await (await fetch(watchUrl(edApp.url, watch))).text();
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
    const text = readFileSync(edApp.keyringPath, 'utf8');
    expect(text).not.toContain(clientKey.privateKey);
    expect(text).not.toContain(limitedKey.privateKey);
    expect(text).toContain(clientKey.publicKey);
  });

  it('a client with an Ed25519 key and no server keys is refused at once', () => {
    expect(() =>
      createSignetClient<Router>({
        url: edApp.url,
        serverId: SERVER_ID,
        clientId: ED.clientId,
        key: { kid: ED.kid, alg: 'ed25519', privateKey: clientKey.privateKey },
      }),
    ).toThrow(/serverKeys/);
  });
});

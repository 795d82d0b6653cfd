// Hostile load over real sockets (issue 17, SECURITY.md "Hostile load"): slow bodies and slow
// headers are cut at their timeout with a 408, connections past the cap are closed, streams that
// deliver are never cut and keep alive with pings, and a body or watch input that names a member
// twice (not I-JSON, DESIGN 1.1) is refused at check 1, unsigned. Runs on both HTTP fronts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient, jobHandle } from '@signet/client';
import { generateSecret, type KeyringFile, type SignetRouter } from '@signet/server';
import { postEnvelope, signedRequest, watchUrl } from '@signet/server/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppServer, startApp } from './app.ts';
import { frontConfig } from './testing/front.ts';
import type { Tools } from './tools/contracts.ts';

const SERVER_ID = 'hostile-server';
const secret = generateSecret();
const keyring: KeyringFile = {
  server_id: SERVER_ID,
  clients: [{ client_id: 'client-001', keys: [{ kid: 'k1', secret }] }],
};
const signer = { serverId: SERVER_ID, clientId: 'client-001', kid: 'k1', secret };
const REQUEST_TIMEOUT_MS = 2_000;
const HEADERS_TIMEOUT_MS = 1_000;

let dir: string;
let server: AppServer;

function start(env: Record<string, string>) {
  return startApp(
    frontConfig({
      SIGNET_PORT: '0',
      SIGNET_STORE: 'memory:',
      SIGNET_KEYRING: join(dir, 'keyring.json'),
      ...env,
    }),
    pino({ level: 'silent' }),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'signet-hostile-'));
  writeFileSync(join(dir, 'keyring.json'), JSON.stringify(keyring));
  server = await start({
    SIGNET_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    SIGNET_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    SIGNET_SSE_PING_MS: '200',
  });
});

afterAll(async () => {
  await server?.close({ graceMs: 0 });
  rmSync(dir, { recursive: true, force: true });
});

const client = (url = server.url) =>
  createSignetClient<SignetRouter<Tools>>({
    url,
    serverId: SERVER_ID,
    clientId: 'client-001',
    key: { kid: 'k1', secret },
  });

/** A raw connection: what it was sent back, and a promise of its close (with when). */
function rawConnection(port = server.port) {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, connected, closed, received: () => received };
}

/** Writes one byte to each socket still open, every `everyMs`, until `stop` settles. */
function trickle(sockets: Socket[], everyMs: number, stop: Promise<unknown>) {
  const timer = setInterval(() => {
    for (const socket of sockets) if (!socket.destroyed) socket.write('1');
  }, everyMs);
  void stop.finally(() => clearInterval(timer));
}

describe('slow requests', () => {
  it('closes 2 000 connections trickling their bodies within the request timeout, while calls go on', async () => {
    const connections = Array.from({ length: 2_000 }, () => rawConnection());
    await Promise.all(connections.map((c) => c.connected));
    const sent = Date.now();
    for (const { socket } of connections) {
      socket.write(
        'POST /trpc/batch_sum HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100000\r\n\r\n{',
      );
    }
    const allClosed = Promise.all(connections.map((c) => c.closed));
    trickle(
      connections.map((c) => c.socket),
      250,
      allClosed,
    );

    // A real client's signed calls succeed all along.
    const signet = client();
    let calls = 0;
    let done = false;
    void allClosed.then(() => {
      done = true;
    });
    while (!done) {
      await expect(signet.batch_sum.mutate({ numbers: [1, 2] })).resolves.toEqual({
        count: 2,
        total: 3,
      });
      calls++;
    }
    const closedAt = await allClosed;
    expect(calls).toBeGreaterThan(0);
    // Node checks the timeouts every second; the rest is margin for a busy machine.
    const margin = 1_000 + 4_000;
    expect(Math.max(...closedAt) - sent).toBeLessThan(REQUEST_TIMEOUT_MS + margin);
    const answered408 = connections.filter((c) => c.received().startsWith('HTTP/1.1 408'));
    expect(answered408.length).toBe(connections.length);
    await expect(signet.server_identity.mutate({})).resolves.toMatchObject({
      server_id: SERVER_ID,
    });
  }, 20_000);

  it('closes connections that trickle their headers at the headers timeout', async () => {
    const opened = Date.now();
    const connections = Array.from({ length: 50 }, () => rawConnection());
    await Promise.all(connections.map((c) => c.connected));
    for (const { socket } of connections) socket.write('POST /trpc/batch_sum HTTP/1.1\r\nX-A: ');
    const allClosed = Promise.all(connections.map((c) => c.closed));
    trickle(
      connections.map((c) => c.socket),
      100,
      allClosed,
    );
    const closedAt = await allClosed;
    expect(Math.max(...closedAt) - opened).toBeLessThan(HEADERS_TIMEOUT_MS + 4_000);
    expect(connections.every((c) => c.received().startsWith('HTTP/1.1 408'))).toBe(true);
  });

  it('never cuts a watch that delivers for longer than the request timeout, and pings it', async () => {
    const signet = client();
    const ticket = await signet.start_long_task.mutate({ seconds: 3, payload: { long: true } });
    const started = Date.now();
    const response = await fetch(
      watchUrl(server.url, signedRequest(signer, 'watch_job', { job_id: ticket.job_id })),
    );
    const text = await response.text();
    expect(Date.now() - started).toBeGreaterThan(REQUEST_TIMEOUT_MS);
    expect(text).toContain('event: ping');
    expect(text).toContain('"status":"done"');
    expect(text).toContain('event: return');
    await expect(jobHandle(signet, ticket).result()).resolves.toEqual({ long: true });
  }, 15_000);
});

describe('the connection cap', () => {
  it('closes a connection past SIGNET_MAX_CONNECTIONS at once, and takes new ones when some close', async () => {
    const capped = await start({ SIGNET_MAX_CONNECTIONS: '20' });
    try {
      const held = Array.from({ length: 20 }, () => rawConnection(capped.port));
      await Promise.all(held.map((c) => c.connected));
      // A request on each: once all are answered, the server has counted all of them.
      for (const { socket } of held) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      await Promise.all(
        held.map(({ socket }) => new Promise((resolve) => socket.once('data', resolve))),
      );
      const refused = rawConnection(capped.port);
      await refused.closed;
      expect(refused.received()).toBe('');
      for (const { socket } of held) socket.destroy();
      await Promise.all(held.map((c) => c.closed));
      await expect(client(capped.url).server_identity.mutate({})).resolves.toMatchObject({
        server_id: SERVER_ID,
      });
    } finally {
      await capped.close({ graceMs: 0 });
    }
  });
});

describe('I-JSON (DESIGN 1.1): a member named twice is 400 PARSE_ERROR, unsigned', () => {
  it('at the top level, in args, and deeper', async () => {
    const text = JSON.stringify(signedRequest(signer, 'batch_sum', { numbers: [1, 2] }));
    for (const body of [
      text.replace('{', '{"args":{"numbers":[5]},'),
      text.replace('"numbers":', '"numbers":[9],"numbers":'),
      text.replace('{', '{"x":{"a":1,"\\u0061":2},'),
    ]) {
      const reply = await postEnvelope(server.url, 'batch_sum', body);
      expect(reply.status, body).toBe(400);
      expect(reply.json?.error?.data.reason).toBe('PARSE_ERROR');
      expect(reply.json?.error?.data.envelope).toBeUndefined();
    }
    // The same envelope without the repetition is a call like any other.
    expect((await postEnvelope(server.url, 'batch_sum', text)).status).toBe(200);
  });

  it('in a watch_job input', async () => {
    const ticket = await client().start_long_task.mutate({ seconds: 1, payload: {} });
    const input = JSON.stringify(
      signedRequest(signer, 'watch_job', { job_id: ticket.job_id }),
    ).replace('"job_id":', `"job_id":"${ticket.job_id}","job_id":`);
    const response = await fetch(`${server.url}/trpc/watch_job?input=${encodeURIComponent(input)}`);
    const text = await response.text();
    expect(text).toContain('event: serialized-error');
    expect(text).toContain('"reason":"PARSE_ERROR"');
    expect(text).not.toContain('"envelope"');
  });
});

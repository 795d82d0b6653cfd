// Watch streams against a hostile client, over real HTTP on both fronts (issue 21): V2, many
// never-read streams of a job with a large output must not multiply its cost (the output is
// canonicalized once per update and its bytes shared; a stream whose socket stays undrained is
// closed; the per-client stream cap holds them), and W5, a stream ends once a keyring reload
// removes its client. Each test starts its own server on the front it names.
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { jobHandle } from '@signet/client';
import type { ResponseEnvelope } from '@signet/protocol';
import { verify } from '@signet/protocol';
import { eventually, parseSse } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import type { AppServer } from './app.ts';
import {
  alice,
  bob,
  cleanUpAfterEachTest,
  keyringOf,
  signed,
  startTestApp,
  typedClient,
  type Who,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

/** A job output of about `bytes` bytes, within the canonicalizer's per-string limit. */
function bigPayload(bytes: number): Record<string, unknown> {
  const payload: Record<string, unknown> = {};
  const blob = 200_000;
  for (let i = 0; i * blob < bytes - 100_000; i++) payload[`blob${i}`] = 'x'.repeat(blob);
  // Some structure too: many small values cost more to walk than one long string.
  payload.items = Array.from({ length: 1_000 }, (_, n) => ({ n, s: 'y'.repeat(80) }));
  return payload;
}

const outputBytes = (payload: Record<string, unknown>) => JSON.stringify(payload).length;

/** A finished job of `who`'s, whose output is `payload`. */
async function finishedJob(app: AppServer, who: Who, payload: Record<string, unknown>) {
  const client = typedClient(app.url, who);
  const ticket = await client.start_long_task.mutate({ seconds: 1, payload });
  await jobHandle(client, ticket).result({ watch: false });
  return ticket.job_id;
}

/** The server's side of each connection, by the client's port, and when it closed. */
function serverSockets(app: AppServer): Map<number, { socket: Socket; closed: Promise<number> }> {
  const sockets = new Map<number, { socket: Socket; closed: Promise<number> }>();
  app.http.on('connection', (socket: Socket) => {
    const closed = new Promise<number>((resolve) =>
      socket.once('close', () => resolve(Date.now())),
    );
    sockets.set(socket.remotePort!, { socket, closed });
  });
  return sockets;
}

/**
 * A watch_job request on a raw socket that never reads what comes back (beyond what the socket
 * takes by itself): `answered` settles once anything came back.
 */
function unreadWatch(app: AppServer, who: Who, jobId: string) {
  const input = encodeURIComponent(JSON.stringify(signed(who, 'watch_job', { job_id: jobId })));
  const socket: Socket = connect(app.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET /trpc/watch_job?input=${input} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const answered = new Promise<void>((resolve) =>
    socket.once('data', () => {
      socket.pause();
      resolve();
    }),
  );
  return { socket, answered };
}

/** A watch read to its end over fetch: its events, and when each came. */
async function readWatch(app: AppServer, who: Who, jobId: string, onEvent?: () => void) {
  const input = encodeURIComponent(JSON.stringify(signed(who, 'watch_job', { job_id: jobId })));
  const response = await fetch(`${app.url}/trpc/watch_job?input=${input}`);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const arrivals: number[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const seen = parseSse(text).filter((e) => e.event === undefined).length;
    while (arrivals.length < seen) {
      arrivals.push(Date.now());
      onEvent?.();
    }
  }
  const events = parseSse(text);
  const updates = events
    .filter((e) => e.event === undefined)
    .map((e) => JSON.parse(e.data!) as ResponseEnvelope);
  return { events, updates, arrivals };
}

// The memory a server holds on to, once garbage is collected (it runs in this process). Its peak
// RSS is no measure of this: it follows when the collector runs.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function retained(): number {
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

describe.each(['signet', 'trpc'])('watch streams on the %s front (issue 21)', (front) => {
  const start = (env: Record<string, string> = {}) =>
    startTestApp(writeKeyring(keyringOf([alice], [bob])), { SIGNET_HTTP: front, ...env });

  it('V2: 100 never-read streams of a ~0.9 MB output are served at once, hold nothing, and other calls go on', async () => {
    const app = await start();
    const payload = bigPayload(900_000);
    const size = outputBytes(payload);
    const jobId = await finishedJob(app, alice, payload);
    // Warm up the paths a stream takes (and check the output comes back whole and verified).
    await expect(
      jobHandle(typedClient(app.url, alice), { job_id: jobId }).result(),
    ).resolves.toEqual(payload);
    await readWatch(app, alice, jobId);

    const before = retained();
    const streams = Array.from({ length: 100 }, () => unreadWatch(app, alice, jobId));
    // Another client's calls are answered meanwhile.
    const calls = (async () => {
      const client = typedClient(app.url, bob);
      for (let i = 0; i < 5; i++) {
        await expect(client.batch_sum.mutate({ numbers: [i, 1] })).resolves.toEqual({
          count: 2,
          total: i + 1,
        });
      }
    })();
    await Promise.all(streams.map((s) => s.answered));
    await calls;
    // Every stream has done its work once its slot is back (its response is over).
    await eventually(
      async () => (app.services.watchSlots.held(alice.clientId) === 0 ? true : undefined),
      20_000,
      'the streams to end',
    );
    const growth = retained() - before;
    for (const { socket } of streams) socket.destroy();
    expect(growth, `held ${Math.round(growth / 1e6)} MB for a ${size} byte output`).toBeLessThan(
      20 * size,
    );
  }, 60_000);

  it('V2: never-read streams whose output waits in the server share one copy of it', async () => {
    // Past what the kernel takes for a socket on loopback (~4 MB), so each stream's data waits
    // in the server, as it would over a real network with far less; no ping (no stall bound) yet.
    const app = await start({
      SIGNET_MAX_BODY_BYTES: '8000000',
      SIGNET_MAX_OUTPUT_BYTES: '8000000',
      SIGNET_SSE_PING_MS: '60000',
    });
    const payload = bigPayload(5_000_000);
    const size = outputBytes(payload);
    const jobId = await finishedJob(app, alice, payload);
    await readWatch(app, alice, jobId);
    const sockets = serverSockets(app);
    const before = retained();
    const streams = Array.from({ length: 20 }, () => unreadWatch(app, alice, jobId));
    await Promise.all(streams.map((s) => s.answered));
    // Each stream has written its update, and it waits, mostly, in the server.
    const ours = streams.map((s) => sockets.get(s.socket.localPort!)!.socket);
    await eventually(
      async () =>
        ours.every((s) => s.bytesWritten > size && s.writableLength > 0) ? true : undefined,
      20_000,
      'the streams to be written',
    );
    const growth = retained() - before;
    for (const { socket } of streams) socket.destroy();
    // A copy per stream would be 20 times the output.
    expect(growth, `held ${Math.round(growth / 1e6)} MB for a ${size} byte output`).toBeLessThan(
      4 * size,
    );
  }, 60_000);

  it('V2: closes a stream whose socket stays undrained for the SSE ping interval; a reading client gets it all', async () => {
    const app = await start({
      SIGNET_MAX_BODY_BYTES: '8000000',
      SIGNET_MAX_OUTPUT_BYTES: '8000000',
      SIGNET_SSE_PING_MS: '1000',
    });
    // Past what the kernel takes for a socket on loopback (~4 MB), so data waits in the server.
    const payload = bigPayload(5_000_000);
    const jobId = await finishedJob(app, alice, payload);
    const sockets = serverSockets(app);
    const streams = Array.from({ length: 5 }, () => unreadWatch(app, alice, jobId));
    await Promise.all(streams.map((s) => s.answered));
    const answeredAt = Date.now();
    // (A client that does not read does not see its connection go: the server's side says.)
    const closed = streams.map((s) => sockets.get(s.socket.localPort!)!.closed);
    // A client that reads gets the whole output, verified, meanwhile.
    await expect(
      jobHandle(typedClient(app.url, alice), { job_id: jobId }).result(),
    ).resolves.toEqual(payload);
    const closedAt = await Promise.race([
      Promise.all(closed),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the undrained streams are still open')), 10_000),
      ),
    ]);
    // The bound (1 s), a check interval, and margin for a busy machine.
    expect(Math.max(...closedAt) - answeredAt).toBeLessThan(6_000);
    await eventually(
      async () => (app.services.watchSlots.held(alice.clientId) === 0 ? true : undefined),
      5_000,
      'the slots to come back',
    );
  }, 60_000);

  it("V2: an undrained stream holds its client's watch slot, so the cap (SIGNET_MAX_WATCHES_PER_CLIENT) bounds them", async () => {
    const app = await start({
      SIGNET_MAX_BODY_BYTES: '8000000',
      SIGNET_MAX_OUTPUT_BYTES: '8000000',
      SIGNET_MAX_WATCHES_PER_CLIENT: '3',
      SIGNET_SSE_PING_MS: '60000',
    });
    const payload = bigPayload(5_000_000);
    const jobId = await finishedJob(app, alice, payload);
    const bobsJob = await finishedJob(app, bob, { small: true });
    const stuck = Array.from({ length: 3 }, () => unreadWatch(app, alice, jobId));
    await Promise.all(stuck.map((s) => s.answered));
    // Their updates were all signed long ago; the slots stay taken while the data waits.
    const refused = await readWatch(app, alice, jobId);
    expect(refused.updates).toEqual([]);
    const error = refused.events.find((e) => e.event === 'serialized-error');
    expect(error?.data).toContain('"reason":"RATE_LIMITED"');
    expect(error?.data).toContain('"limit":"watch_streams"');
    // Another client is not held to alice's cap.
    const bobs = await readWatch(app, bob, bobsJob);
    expect(bobs.updates.map((u) => u.status)).toEqual(['done']);
    // Once the stuck connections go, alice may watch again.
    for (const { socket } of stuck) socket.destroy();
    await eventually(
      async () => (app.services.watchSlots.held(alice.clientId) === 0 ? true : undefined),
      5_000,
      'the slots to come back',
    );
    const again = await readWatch(app, alice, jobId);
    expect(again.updates.map((u) => u.status)).toEqual(['done']);
  }, 60_000);

  it('V2: streams of one job that share its update each carry their own verified envelope', async () => {
    const app = await start();
    const payload = bigPayload(300_000);
    const client = typedClient(app.url, alice);
    const ticket = await client.start_long_task.mutate({ seconds: 2, payload });
    // The typed client verifies every event; three streams of the same updates, at once.
    const watches = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const seen: string[] = [];
        for await (const state of jobHandle(client, ticket).watch()) {
          seen.push(state.status);
          if (state.status === 'done') expect(state.output).toEqual(payload);
        }
        return seen;
      }),
    );
    for (const seen of watches) expect(seen.at(-1)).toBe('done');
    // Raw, each event is a whole envelope signed for its own request.
    const raw = await Promise.all([1, 2].map(() => readWatch(app, alice, ticket.job_id)));
    const [one, two] = raw.map((r) => r.updates.at(-1)!);
    expect(one!.request_id).not.toBe(two!.request_id);
    for (const envelope of [one!, two!]) {
      expect(verify(envelope, alice.secret)).toBe(true);
      expect(envelope.result).toEqual(payload);
    }
  }, 60_000);

  it('W5: a watch ends once a keyring reload removes its client, and nothing signed comes after', async () => {
    const keyringPath = writeKeyring(keyringOf([alice], [bob]));
    const app = await startTestApp(keyringPath, { SIGNET_HTTP: front });
    const ticket = await typedClient(app.url, alice).start_long_task.mutate({
      seconds: 6,
      payload: { n: 1 },
    });
    let reloadedAt = 0;
    const read = readWatch(app, alice, ticket.job_id, () => {
      if (reloadedAt !== 0) return;
      // At the first update: alice is removed.
      writeFileSync(keyringPath, JSON.stringify(keyringOf([bob])));
      reloadedAt = Date.now();
      expect(app.reloadKeyring()).toBe(true);
    });
    const { updates, events, arrivals } = await Promise.race([
      read,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the watch did not end')), 4_000),
      ),
    ]);
    expect(reloadedAt).toBeGreaterThan(0);
    // It ended before the job did (1 s between progress updates), with nothing signed after.
    expect(Date.now() - reloadedAt).toBeLessThan(3_000);
    expect(updates.some((u) => u.status === 'done')).toBe(false);
    for (const update of updates) {
      expect(verify(update, alice.secret)).toBe(true);
      expect(update.ts_ms).toBeLessThanOrEqual(reloadedAt);
    }
    expect(arrivals).toHaveLength(updates.length);
    expect(events.some((e) => e.event === 'serialized-error')).toBe(false);
  }, 30_000);
});

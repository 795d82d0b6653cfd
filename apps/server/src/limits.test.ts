// Per-client caps over real HTTP (issue #17, DESIGN 1.4): watch_job streams open at once
// (SIGNET_MAX_WATCHES_PER_CLIENT) and unfinished jobs (SIGNET_MAX_JOBS_PER_CLIENT). Past a cap a
// call is a signed 429 RATE_LIMITED that spends no nonce, other clients are unaffected, and a
// watch's slot comes back however its stream ends. Held jobs end when the test says.
import { randomUUID } from 'node:crypto';
import { createSignetClient, jobHandle, signetReason } from '@signet/client';
import { type RequestEnvelope, verify } from '@signet/protocol';
import {
  type Backend,
  Keyring,
  MemoryStore,
  type RunningSignetServer,
  type SignetRouter,
  startSignetServer,
} from '@signet/server';
import { redisBackend } from '@signet/server/redis';
import {
  HeldJobs,
  type JobTestTools,
  jobTestHandlers,
  jobTestTools,
  parseSse,
} from '@signet/server/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { FRONT } from './testing/front.ts';
import {
  alice,
  apps,
  bob,
  cleanUpAfterEachTest,
  expectOk,
  expectRefusal,
  keyringOf,
  post,
  SERVER_ID,
  signed,
  silent,
  startTestApp,
  type Who,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

const redisUrl = process.env.SIGNET_TEST_REDIS_URL;
const MAX = 2;

let heldJobs = new HeldJobs();
afterEach(() => {
  for (const label of heldJobs.started) heldJobs.release(label);
});

/** A server of the job-test tools on the front under test, with caps of 2. */
async function startCapped(store: Backend = new MemoryStore()) {
  heldJobs = new HeldJobs();
  const server: RunningSignetServer<JobTestTools> = await startSignetServer({
    contracts: jobTestTools,
    handlers: jobTestHandlers(heldJobs),
    keyring: () => new Keyring(keyringOf([alice], [bob])),
    store,
    logger: silent,
    httpFront: FRONT,
    concurrency: 8,
    clientLimits: { watchStreams: MAX, unfinishedJobs: MAX },
  });
  apps.push(server);
  return server;
}

function clientOf(server: { url: string }, who: Who) {
  return createSignetClient<SignetRouter<JobTestTools>>({
    url: server.url,
    serverId: SERVER_ID,
    clientId: who.clientId,
    key: { kid: who.kid, secret: who.secret },
  });
}

/** Starts a held job through a hand-signed POST; its id. */
async function startHeld(server: { url: string }, who: Who, label: string) {
  const request = signed(who, 'held', { label });
  const data = expectOk(await post(server.url, 'held', request), request, who);
  return (data.result as { job_id: string }).job_id;
}

/** A watch_job stream over a real socket, read as its events come. */
async function openWatch(server: { url: string }, request: RequestEnvelope) {
  const input = encodeURIComponent(JSON.stringify(request));
  const controller = new AbortController();
  const response = await fetch(`${server.url}/trpc/watch_job?input=${input}`, {
    signal: controller.signal,
  });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let ended = false;
  const events = () => parseSse(text);
  return {
    response,
    /** Reads until `predicate` holds of the events so far, or the stream ends. */
    async until(predicate: (seen: Array<Record<string, string>>) => boolean) {
      while (!ended && !predicate(events())) {
        const { done, value } = await reader.read();
        if (done) ended = true;
        else text += decoder.decode(value, { stream: true });
      }
      return events();
    },
    /** The stream's job updates so far. */
    messages: () => events().filter((e) => e.event === undefined),
    /** Reads to the end: the one `serialized-error` of a refused watch, if it is one. */
    async refusal() {
      const seen = await this.until(() => false);
      return seen.filter((e) => e.event === 'serialized-error').map((e) => JSON.parse(e.data!));
    },
    /** The client goes away. */
    drop: () => controller.abort(),
  };
}

/** A watch of `jobId` by `who` that is live: its first update has come. */
async function liveWatch(server: { url: string }, who: Who, jobId: string) {
  const watch = await openWatch(server, signed(who, 'watch_job', { job_id: jobId }));
  await watch.until((seen) => seen.some((e) => e.event === undefined));
  expect(watch.messages().length).toBeGreaterThan(0);
  return watch;
}

/** What a watch refused at the stream cap must look like: one signed serialized-error, no header. */
function expectStreamCapRefusal(watch: Awaited<ReturnType<typeof openWatch>>, errors: unknown[]) {
  expect(watch.response.status).toBe(200);
  expect(watch.response.headers.get('retry-after')).toBeNull();
  expect(errors).toHaveLength(1);
  const { data } = errors[0] as { data: Record<string, unknown> };
  expect(data).toMatchObject({ reason: 'RATE_LIMITED', httpStatus: 429 });
  const envelope = data.envelope as Parameters<typeof verify>[0];
  expect(verify(envelope, alice.secret)).toBe(true);
  expect(envelope).toMatchObject({
    ok: false,
    status: 'error',
    error: { code: 'RATE_LIMITED', details: { limit: 'watch_streams', max: MAX } },
  });
}

describe('watch streams per client (SIGNET_MAX_WATCHES_PER_CLIENT)', () => {
  it("a client past its cap gets 429 in the stream's one error event, and its nonce is not spent; another client's watch works", async () => {
    const server = await startCapped();
    const job = await startHeld(server, alice, 'a');
    const open = [await liveWatch(server, alice, job), await liveWatch(server, alice, job)];
    const request = signed(alice, 'watch_job', { job_id: job });
    const refused = await openWatch(server, request);
    expectStreamCapRefusal(refused, await refused.refusal());
    // Bob's streams are his own.
    const bobs = await liveWatch(server, bob, await startHeld(server, bob, 'b'));
    // Once one of Alice's streams is gone, the very same signed call gets its stream.
    open[0]!.drop();
    await expect.poll(() => server.services.watchSlots.held(alice.clientId)).toBe(MAX - 1);
    const again = await openWatch(server, request);
    await again.until((seen) => seen.some((e) => e.event === undefined));
    heldJobs.release('a');
    const ends = (w: typeof again) => w.until((seen) => seen.some((e) => e.event === 'return'));
    for (const watch of [again, open[1]!]) {
      expect((await ends(watch)).some((e) => e.data?.includes('"status":"done"'))).toBe(true);
    }
    bobs.drop();
    await expect.poll(() => server.services.watchSlots.held(alice.clientId)).toBe(0);
    // Spent now.
    const replayed = await openWatch(server, request);
    const [error] = await replayed.refusal();
    expect(error.data.reason).toBe('REPLAYED_NONCE');
  });

  it('no slot leaks: after many streams dropped, finished or refused, the client still opens its full cap', async () => {
    const server = await startCapped();
    const running = await startHeld(server, alice, 'r');
    const finished = await startHeld(server, alice, 'f');
    await heldJobs.until(() => heldJobs.started.includes('f'));
    heldJobs.release('f');
    await jobHandle(clientOf(server, alice), { job_id: finished }).result({ watch: false });
    const bobsJob = await startHeld(server, bob, 'bob');
    for (let round = 0; round < 10; round++) {
      // Dropped by the client while live, and before any event came.
      const live = [
        await liveWatch(server, alice, running),
        await liveWatch(server, alice, running),
      ];
      for (const watch of live) watch.drop();
      (await openWatch(server, signed(alice, 'watch_job', { job_id: running }))).drop();
      // Ended by the job: it is finished.
      const done = await openWatch(server, signed(alice, 'watch_job', { job_id: finished }));
      await done.until((seen) => seen.some((e) => e.event === 'return'));
      // Refused after the slot was taken: another client's job, a replayed nonce.
      const others = await openWatch(server, signed(alice, 'watch_job', { job_id: bobsJob }));
      expect((await others.refusal())[0].data.reason).toBe('JOB_NOT_FOUND');
      const request = signed(alice, 'watch_job', { job_id: finished });
      await (await openWatch(server, request)).until((seen) =>
        seen.some((e) => e.event === 'return'),
      );
      const replay = await openWatch(server, request);
      expect((await replay.refusal())[0].data.reason).toBe('REPLAYED_NONCE');
      await expect.poll(() => server.services.watchSlots.held(alice.clientId)).toBe(0);
    }
    const full = [await liveWatch(server, alice, running), await liveWatch(server, alice, running)];
    const refused = await openWatch(server, signed(alice, 'watch_job', { job_id: running }));
    expectStreamCapRefusal(refused, await refused.refusal());
    for (const watch of full) watch.drop();
  });

  it('job.result() falls back to polling when its watch is refused at the cap', async () => {
    const server = await startCapped();
    const client = clientOf(server, alice);
    const job = await startHeld(server, alice, 'held-open');
    const open = [await liveWatch(server, alice, job), await liveWatch(server, alice, job)];
    const waited = jobHandle(client, await client.held.mutate({ label: 'polled' }));
    // Its own watch is refused (RATE_LIMITED) while the two streams above hold the slots.
    const refused = await (async () => {
      try {
        for await (const _ of waited.watch()) break;
      } catch (error) {
        return signetReason(error);
      }
    })();
    expect(refused).toBe('RATE_LIMITED');
    const states: string[] = [];
    const result = waited.result({ pollMs: 10, onState: (state) => states.push(state.status) });
    await heldJobs.until(() => heldJobs.started.includes('polled'));
    await expect.poll(() => states.includes('running')).toBe(true);
    heldJobs.release('polled');
    expect(await result).toEqual({ label: 'polled' });
    expect(server.services.watchSlots.held(alice.clientId)).toBe(MAX);
    for (const watch of open) watch.drop();
  });
});

const stores: Array<[string, (() => Backend) | undefined]> = [
  ['memory', () => new MemoryStore()],
  [
    'redis',
    redisUrl
      ? () =>
          redisBackend({ url: redisUrl, runHandlers: true, namespace: `limits-${randomUUID()}` })
      : undefined,
  ],
];

describe.each(stores)(
  'unfinished jobs per client (SIGNET_MAX_JOBS_PER_CLIENT), store %s',
  (_name, store) => {
    const run = store ? it : it.skip;

    run(
      'a client past its cap gets 429 with Retry-After on start; its nonce is not spent: the same body succeeds once a job finishes',
      async () => {
        const server = await startCapped(store!());
        const first = await startHeld(server, alice, 'j1');
        await startHeld(server, alice, 'j2');
        // Hand-signed, and re-POSTed byte for byte.
        const body = JSON.stringify(signed(alice, 'held', { label: 'j3' }));
        const request = JSON.parse(body) as RequestEnvelope;
        const limited = await post(server.url, 'held', body);
        const error = expectRefusal(limited, 429, 'RATE_LIMITED', alice);
        expect(limited.headers.get('retry-after')).toBe('1');
        expect(error.data.envelope?.error?.details).toEqual({
          limit: 'unfinished_jobs',
          max: MAX,
          retry_after_s: 1,
        });
        expect(error.data.envelope).toMatchObject({
          request_id: request.request_id,
          nonce: request.nonce,
        });
        // Bob's jobs are his own.
        await startHeld(server, bob, 'b1');
        await startHeld(server, bob, 'b2');
        // Still refused, and still not spent, until one of Alice's jobs finishes.
        expectRefusal(await post(server.url, 'held', body), 429, 'RATE_LIMITED', alice);
        await heldJobs.until(() => heldJobs.started.includes('j1'));
        heldJobs.release('j1');
        const output = await jobHandle(clientOf(server, alice), { job_id: first }).result();
        expect(output).toEqual({ label: 'j1' });
        const accepted = expectOk(await post(server.url, 'held', body), request, alice);
        expect(accepted.status).toBe('accepted');
        // Now it is spent, and Alice is at her cap again.
        expectRefusal(await post(server.url, 'held', body), 409, 'REPLAYED_NONCE', alice);
        const next = signed(alice, 'held', { label: 'j4' });
        expectRefusal(await post(server.url, 'held', next), 429, 'RATE_LIMITED', alice);
      },
    );

    run(
      'at the cap, a retry of a start that made its job (same request_id and args) gets its job_id',
      async () => {
        const server = await startCapped(store!());
        const start = signed(alice, 'held', { label: 'k1' });
        const data = expectOk(await post(server.url, 'held', start), start, alice);
        const jobId = (data.result as { job_id: string }).job_id;
        await startHeld(server, alice, 'k2');
        const retry = signed(alice, 'held', { label: 'k1' }, { request_id: start.request_id });
        const retried = expectOk(await post(server.url, 'held', retry), retry, alice);
        expect(retried.result).toEqual({ job_id: jobId });
        // The same request_id with other args is no retry: 409, as below the cap.
        const reused = signed(alice, 'held', { label: 'other' }, { request_id: start.request_id });
        expectRefusal(await post(server.url, 'held', reused), 409, 'REQUEST_ID_REUSED', alice);
        const fresh = signed(alice, 'held', { label: 'k3' });
        expectRefusal(await post(server.url, 'held', fresh), 429, 'RATE_LIMITED', alice);
      },
    );
  },
);

describe('the caps from the environment', () => {
  it('pnpm serve holds each client to SIGNET_MAX_JOBS_PER_CLIENT; a cancel makes room', async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice], [bob])), {
      SIGNET_MAX_JOBS_PER_CLIENT: '1',
      SIGNET_MAX_WATCHES_PER_CLIENT: '3',
    });
    expect(app.services.limits).toEqual({ watchStreams: 3, unfinishedJobs: 1 });
    const task = (label: string) =>
      signed(alice, 'start_long_task', { seconds: 20, payload: { label } });
    const first = task('first');
    const data = expectOk(await post(app.url, 'start_long_task', first), first, alice);
    const second = task('second');
    const limited = await post(app.url, 'start_long_task', second);
    expectRefusal(limited, 429, 'RATE_LIMITED', alice);
    expect(limited.headers.get('retry-after')).toBe('1');
    const bobs = signed(bob, 'start_long_task', { seconds: 20, payload: {} });
    expectOk(await post(app.url, 'start_long_task', bobs), bobs, bob);
    const cancel = signed(alice, 'cancel_job', {
      job_id: (data.result as { job_id: string }).job_id,
    });
    expect(expectOk(await post(app.url, 'cancel_job', cancel), cancel, alice).status).toBe(
      'cancelled',
    );
    expectOk(await post(app.url, 'start_long_task', second), second, alice);
  });
});

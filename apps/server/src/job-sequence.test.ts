// Issue 20: every job response carries, signed, `job: {id, seq}` (DESIGN 1.2); the client refuses
// a watch event that does not come after the last one, and a poll that goes back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createSignetClient,
  type JobHandle,
  jobHandle,
  jobSeq,
  signetReason,
} from '@signet/client';
import {
  generateEd25519KeyPair,
  type JobState,
  type KeyringFile,
  type ResponseEnvelope,
  signResponse,
  type UnsignedResponseEnvelope,
} from '@signet/protocol';
import {
  generateKeyringFile,
  Keyring,
  type RunningSignetServer,
  type SignetRouter,
  startSignetServer,
} from '@signet/server';
import { SqliteStore } from '@signet/server/sqlite';
import {
  HeldJobs,
  type JobTestTools,
  jobTestHandlers,
  jobTestTools,
  parseSse,
  postEnvelope,
  signedRequest,
  watchUrl,
} from '@signet/server/testing';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';

const SERVER_ID = 'seq-server';
const hmacFile = generateKeyringFile({ serverId: SERVER_ID, clientIds: ['alice'] });
const aliceKey = hmacFile.clients[0]!.keys[0]! as { kid: string; secret: string };
// And an Ed25519 client, answered with server key s1: the checks hold for either kind of key.
const serverPair = generateEd25519KeyPair();
const ednaPair = generateEd25519KeyPair();
const keyringFile: KeyringFile = {
  ...hmacFile,
  clients: [
    ...hmacFile.clients,
    { client_id: 'edna', keys: [{ kid: 'e1', alg: 'ed25519', public_key: ednaPair.publicKey }] },
  ],
  server_keys: [{ kid: 's1', alg: 'ed25519', private_key: serverPair.privateKey }],
};
const keyring = new Keyring(keyringFile);
type Who = 'alice' | 'edna';
const alice = { serverId: SERVER_ID, clientId: 'alice', secret: aliceKey.secret };

let server: RunningSignetServer<JobTestTools> | undefined;
let held: HeldJobs;

afterEach(async () => {
  for (const label of held?.started ?? []) held.release(label);
  await server?.close({ graceMs: 0 });
  server = undefined;
});

async function start() {
  held = new HeldJobs();
  server = await startSignetServer({
    contracts: jobTestTools,
    handlers: jobTestHandlers(held),
    keyring: () => keyring,
    store: new SqliteStore(join(mkdtempSync(join(tmpdir(), 'signet-seq-')), 'signet.db')),
    logger: pino({ level: 'silent' }),
  });
  return server;
}

function clientFor(fetch?: typeof globalThis.fetch, who: Who = 'alice') {
  return createSignetClient<SignetRouter<JobTestTools>>({
    url: server!.url,
    serverId: SERVER_ID,
    maxReconnects: 0,
    ...(who === 'alice'
      ? { clientId: 'alice', key: aliceKey }
      : {
          clientId: 'edna',
          key: { kid: 'e1', alg: 'ed25519' as const, privateKey: ednaPair.privateKey },
          serverKeys: [{ kid: 's1', publicKey: serverPair.publicKey }],
        }),
    ...(fetch ? { fetch } : {}),
  });
}

/** Calls `tool` by hand: the signed envelope it answers with (success or refusal). */
async function call(tool: string, args: Record<string, unknown>) {
  const reply = await postEnvelope(server!.url, tool, signedRequest(alice, tool, args));
  const envelope = reply.json?.result?.data ?? reply.json?.error?.data?.envelope;
  return { status: reply.status, envelope: envelope as ResponseEnvelope };
}

/** A watch_job stream read by hand to its end: each event's id and signed envelope. */
async function rawWatch(jobId: string, after?: string) {
  const args = after === undefined ? { job_id: jobId } : { job_id: jobId, after };
  const response = await fetch(watchUrl(server!.url, signedRequest(alice, 'watch_job', args)), {
    signal: AbortSignal.timeout(10_000),
  });
  return parseSse(await response.text())
    .filter((event) => event.event === undefined)
    .map((event) => ({ id: event.id, envelope: JSON.parse(event.data!) as ResponseEnvelope }));
}

function strictlyIncreasing(values: number[]): boolean {
  return values.every((value, i) => i === 0 || value > values[i - 1]!);
}

describe('job responses carry a signed job {id, seq}', () => {
  it('on the start, polls, cancel and every watch event; not on tools or refusals', async () => {
    await start();
    const started = await call('held', { label: 'a' });
    expect(started.envelope.status).toBe('accepted');
    const jobId = (started.envelope.result as { job_id: string }).job_id;
    expect(started.envelope.job).toEqual({ id: jobId, seq: 0 });
    // A retry of the start (same request_id, new nonce) reports where the job is now.
    await held.until(() => held.started.includes('a'));
    const polls: number[] = [];
    await vi.waitFor(async () => {
      const polled = await call('poll_job', { job_id: jobId });
      expect(polled.envelope.job?.id).toBe(jobId);
      polls.push(polled.envelope.job!.seq);
      expect(polled.envelope.result).toMatchObject({ progress: { current: 1 } });
    });
    expect(polls.at(-1)).toBe(2); // 1: running, 2: its progress
    const retry = await postEnvelope(
      server!.url,
      'held',
      signedRequest(alice, 'held', { label: 'a' }, { request_id: started.envelope.request_id }),
    );
    expect(retry.json?.result?.data.job).toEqual({ id: jobId, seq: 2 });
    expect(retry.json?.result?.data.result).toEqual({ job_id: jobId });
    // The watch starts at the current state; each event's id is its signed seq.
    const watching = rawWatch(jobId);
    await vi.waitFor(() => expect(server!.services.watchSlots.held('alice')).toBe(1));
    const cancelled = await call('cancel_job', { job_id: jobId });
    expect(cancelled.envelope).toMatchObject({ status: 'cancelled', job: { id: jobId, seq: 3 } });
    const events = await watching;
    // (The stream starts at the state it finds: 2, unless the cancel came first.)
    const watched = events.map((e) => e.envelope.job!.seq);
    expect(watched.at(-1)).toBe(3);
    expect(watched.every((seq) => seq >= 2)).toBe(true);
    expect(strictlyIncreasing(watched)).toBe(true);
    expect(events.map((e) => e.id)).toEqual(watched.map(String));
    for (const { envelope } of events) expect(envelope.job!.id).toBe(jobId);
    const after = await call('poll_job', { job_id: jobId });
    polls.push(after.envelope.job!.seq);
    expect(strictlyIncreasing([...new Set(polls)])).toBe(true);
    expect(polls.at(-1)).toBe(3);
    // `result` is as it always was (DESIGN 1.7): the job's id lives in `job`, not beside it.
    expect(after.envelope.result).toBeNull();
    // Not on a tool's response, nor on a refusal of a job call.
    const identity = await call('server_identity', {});
    expect(identity.envelope.status).toBe('ok');
    expect('job' in identity.envelope).toBe(false);
    const missing = await call('poll_job', { job_id: '00000000-0000-4000-8000-000000000000' });
    expect(missing.status).toBe(404);
    expect(missing.envelope.error?.code).toBe('JOB_NOT_FOUND');
    expect('job' in missing.envelope).toBe(false);
  });

  it('a watch from a cursor sends every change after it, its seq strictly increasing', async () => {
    await start();
    const started = await call('count_primes', { below: 10_000, steps: 5 });
    const jobId = (started.envelope.result as { job_id: string }).job_id;
    const all = await rawWatch(jobId, '0');
    const seqs = all.map((e) => e.envelope.job!.seq);
    expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(all.map((e) => e.id)).toEqual(seqs.map(String));
    expect(all.at(-1)!.envelope.status).toBe('done');
  });
});

describe('the client checks job.id and job.seq', () => {
  it('exposes each state seq (jobSeq), increasing over polls and the watch', async () => {
    await start();
    const client = clientFor();
    const job = jobHandle(client, await client.held.mutate({ label: 'c' }));
    await held.until(() => held.started.includes('c'));
    const first = await job.poll();
    expect(jobSeq(first)).toBeGreaterThanOrEqual(1);
    const watched: number[] = [];
    const watching = (async () => {
      for await (const state of job.watch()) watched.push(jobSeq(state)!);
    })();
    await vi.waitFor(() => expect(watched.length).toBeGreaterThan(0));
    held.release('c');
    await watching;
    expect(strictlyIncreasing(watched)).toBe(true);
    const last = await job.poll();
    expect(last.status).toBe('done');
    expect(jobSeq(last)).toBe(watched.at(-1));
    // The state itself is as it was: seq rides beside it.
    expect(last).toEqual({ job_id: job.id, status: 'done', output: { label: 'c' } });
  });

  /** Watches `jobId` from cursor 0 through `fetch`; the seqs seen, and how the watch ended. */
  function watchFrom0(fetch: typeof globalThis.fetch | undefined, jobId: string, who: Who) {
    const client = clientFor(fetch, who);
    const seqs: number[] = [];
    return new Promise<{ seqs: number[]; error?: unknown }>((resolve) => {
      client.watch_job.subscribe(
        { job_id: jobId, after: '0' },
        {
          onData: (state: JobState) => seqs.push(jobSeq(state)!),
          onError: (error: unknown) => resolve({ seqs, error }),
          onComplete: () => resolve({ seqs }),
        },
      );
    });
  }

  /** A fetch that answers watch_job with the real stream's events rearranged by `rearrange`. */
  function tamperedStream(rearrange: (events: string[]) => string[]): typeof globalThis.fetch {
    return async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).includes('/trpc/watch_job')) return response;
      const messages = parseSse(await response.text())
        .filter((event) => event.event === undefined)
        .map((event) => `id: ${event.id}\ndata: ${event.data}\n\n`);
      return new Response(rearrange(messages).join(''), {
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
      });
    };
  }

  async function finishedJob(who: Who) {
    const client = clientFor(undefined, who);
    const ticket = await client.count_primes.mutate({ below: 10_000, steps: 5 });
    await jobHandle(client, ticket).result({ watch: false });
    return ticket.job_id;
  }

  it.each(['alice', 'edna'] as const)(
    'refuses a watch event replayed in its stream (validly signed: only seq tells; %s)',
    async (who) => {
      await start();
      const jobId = await finishedJob(who);
      expect(
        await watchFrom0(
          tamperedStream((e) => e),
          jobId,
          who,
        ),
      ).toEqual({
        seqs: [1, 2, 3, 4, 5, 6, 7],
      });
      const replayed = await watchFrom0(
        tamperedStream((e) => [e[0]!, e[1]!, e[0]!, ...e.slice(2)]),
        jobId,
        who,
      );
      expect(replayed.seqs).toEqual([1, 2]);
      expect(signetReason(replayed.error)).toBe('BAD_JOB_SEQUENCE');
      // The same event twice in a row is a replay too.
      const doubled = await watchFrom0(
        tamperedStream((e) => [e[0]!, e[0]!, ...e.slice(1)]),
        jobId,
        who,
      );
      expect(doubled.seqs).toEqual([1]);
      expect(signetReason(doubled.error)).toBe('BAD_JOB_SEQUENCE');
    },
  );

  it.each(['alice', 'edna'] as const)('refuses a watch event out of order (%s)', async (who) => {
    await start();
    const jobId = await finishedJob(who);
    const reordered = await watchFrom0(
      tamperedStream((e) => [e[0]!, e[2]!, e[1]!, ...e.slice(3)]),
      jobId,
      who,
    );
    expect(reordered.seqs).toEqual([1, 3]);
    expect(signetReason(reordered.error)).toBe('BAD_JOB_SEQUENCE');
  });

  /**
   * A fetch that keeps poll_job's answers, and on demand answers with the first one kept:
   * 'replay' as it was, 'stale' re-signed for the request at hand (what a lagging replica, or a
   * holder of the client's key, could send), with `job` as given.
   */
  function pollTamper() {
    const kept: string[] = [];
    const state = { mode: 'pass' as 'pass' | 'replay' | 'stale', job: undefined as unknown };
    const tampering: typeof globalThis.fetch = async (input, init) => {
      if (!String(input).includes('/trpc/poll_job') || state.mode === 'pass') {
        const response = await fetch(input, init);
        if (!String(input).includes('/trpc/poll_job')) return response;
        const text = await response.text();
        kept.push(text);
        return new Response(text, { status: response.status, headers: response.headers });
      }
      if (state.mode === 'replay') {
        return new Response(kept[0], { headers: { 'content-type': 'application/json' } });
      }
      const request = JSON.parse(String(init?.body)) as { request_id: string; nonce: string };
      const old = (JSON.parse(kept[0]!) as { result: { data: ResponseEnvelope } }).result.data;
      const { signature: _old, ...unsigned } = old;
      const resigned = signResponse(
        {
          ...unsigned,
          request_id: request.request_id,
          nonce: request.nonce,
          ts_ms: Date.now(),
          ...(state.job === undefined ? {} : { job: state.job }),
        } as UnsignedResponseEnvelope,
        aliceKey.secret,
      );
      return new Response(`{"result":{"data":${resigned.json}}}`, {
        headers: { 'content-type': 'application/json' },
      });
    };
    return { fetch: tampering, state };
  }

  async function refusalOf(job: JobHandle<unknown>) {
    const error = await job.poll().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    return signetReason(error);
  }

  it('refuses a poll answered with an older state than one already seen', async () => {
    await start();
    const tamper = pollTamper();
    const client = clientFor(tamper.fetch);
    const job = jobHandle(client, await client.held.mutate({ label: 'p' }));
    await held.until(() => held.started.includes('p'));
    const older = await job.poll();
    held.release('p');
    await vi.waitFor(async () => expect((await job.poll()).status).toBe('done'));
    const newest = await job.poll();
    expect(jobSeq(newest)!).toBeGreaterThan(jobSeq(older)!);
    // The old answer replayed as it was: it echoes another request's nonce.
    tamper.state.mode = 'replay';
    expect(await refusalOf(job)).toBe('RESPONSE_MISMATCH');
    // The old state, signed for this very request: validly signed, but it goes back.
    tamper.state.mode = 'stale';
    expect(await refusalOf(job)).toBe('BAD_JOB_SEQUENCE');
    // Signed for this request, but about another job.
    tamper.state.job = { id: '00000000-0000-4000-8000-000000000000', seq: 99 };
    expect(await refusalOf(job)).toBe('RESPONSE_MISMATCH');
    // A handle that has not seen the newer state takes the same answer: it is not older for it.
    tamper.state.job = undefined;
    const fresh = jobHandle(client, { job_id: job.id });
    expect(jobSeq(await fresh.poll())).toBe(jobSeq(older));
    tamper.state.mode = 'pass';
    expect(jobSeq(await job.poll())).toBe(jobSeq(newest));
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient, JobFailedError, jobHandle, signetReason } from '@signet/client';
import { type ResponseEnvelope, verify } from '@signet/protocol';
import {
  generateKeyringFile,
  Keyring,
  type RunningSignetServer,
  type SignetRouter,
  startSignetServer,
} from '@signet/server';
import { SqliteFile, SqliteStore } from '@signet/server/sqlite';
import {
  eventually,
  HeldJobs,
  type JobTestTools,
  jobTestHandlers,
  jobTestTools,
  parseSse,
  signedRequest,
  watchUrl,
} from '@signet/server/testing';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type AppServer, startApp } from './app.ts';
import { loadConfig } from './config.ts';
import type { tools } from './tools/contracts.ts';

const keyringFile = generateKeyringFile({ serverId: 'jobs-server', clientIds: ['alice', 'bob'] });
const keyring = new Keyring(keyringFile);
const [alice, bob] = keyringFile.clients.map((c) => ({ clientId: c.client_id, key: c.keys[0]! }));

let server: RunningSignetServer<JobTestTools> | undefined;
let heldJobs: HeldJobs;
let databasePath: string;

afterEach(async () => {
  for (const label of heldJobs?.started ?? []) heldJobs.release(label);
  await server?.close({ graceMs: 0 });
  server = undefined;
});

async function start(
  opts: { concurrency?: number; retentionMs?: number; now?: () => number } = {},
) {
  heldJobs = new HeldJobs();
  databasePath = join(mkdtempSync(join(tmpdir(), 'signet-jobs-')), 'signet.db');
  server = await startSignetServer({
    contracts: jobTestTools,
    handlers: jobTestHandlers(heldJobs),
    keyring: () => keyring,
    store: new SqliteStore(databasePath),
    logger: pino({ level: 'silent' }),
    ...opts,
  });
  return server;
}

function clientFor(who: typeof alice, now?: () => number) {
  return createSignetClient<SignetRouter<JobTestTools>>({
    url: server!.url,
    serverId: 'jobs-server',
    clientId: who!.clientId,
    key: who!.key,
    ...(now ? { now } : {}),
  });
}

/** Reads a watch_job SSE stream to its end: the signed envelopes and their event ids. */
async function rawWatch(who: typeof alice, jobId: string, after?: string) {
  const envelope = signedRequest(
    { serverId: 'jobs-server', clientId: who!.clientId, secret: who!.key.secret },
    'watch_job',
    after === undefined ? { job_id: jobId } : { job_id: jobId, after },
  );
  const response = await fetch(watchUrl(server!.url, envelope), {
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  const events = parseSse(text);
  return {
    messages: events
      .filter((e) => e.event === undefined)
      .map((e) => ({ id: e.id, envelope: JSON.parse(e.data!) as ResponseEnvelope })),
    errors: events.filter((e) => e.event === 'serialized-error').map((e) => JSON.parse(e.data!)),
  };
}

describe('jobs over HTTP', () => {
  it('shows the progress a running job reports', async () => {
    await start();
    const client = clientFor(alice);
    const job = jobHandle(client, await client.held.mutate({ label: 'a' }));
    await heldJobs.until(() => heldJobs.started.includes('a'));
    const state = await job.poll();
    expect(state).toEqual({
      job_id: job.id,
      status: 'running',
      progress: { current: 1, total: 2, message: 'a halfway' },
    });
    heldJobs.release('a');
    expect(await job.result({ watch: false })).toEqual({ label: 'a' });
  });

  it('cancels a running job within a second, through its AbortSignal', async () => {
    await start();
    const client = clientFor(alice);
    const job = jobHandle(client, await client.held.mutate({ label: 'long' }));
    await heldJobs.until(() => heldJobs.started.includes('long'));
    const cancelledAt = Date.now();
    const state = await job.cancel();
    expect(state.status).toBe('cancelled');
    await heldJobs.until(() => heldJobs.aborted.has('long'), 1_000);
    expect(heldJobs.aborted.get('long')! - cancelledAt).toBeLessThan(1_000);
    expect((await job.poll()).status).toBe('cancelled');
    await expect(job.result()).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('runs a job that does real work in steps, and watch delivers every change in order', async () => {
    await start();
    const client = clientFor(alice);
    const job = jobHandle(client, await client.count_primes.mutate({ below: 200_000, steps: 8 }));
    const states = [];
    for await (const state of job.watch()) states.push(state);
    const last = states.at(-1)!;
    expect(last).toEqual({ job_id: job.id, status: 'done', output: { count: 17_984 } });
    const reported = states.flatMap((s) =>
      'progress' in s && s.progress ? [s.progress.current] : [],
    );
    // Every step the handler reported arrives, in order, none twice.
    expect(reported.filter((n, i) => i === 0 || n !== reported[i - 1])).toEqual(
      [...new Set(reported)].sort((a, b) => a - b),
    );
    expect(reported.at(-1)).toBe(8);
  });

  it('resumes a watch after the last event id without losing or repeating an event', async () => {
    await start();
    const client = clientFor(alice);
    const job = jobHandle(client, await client.count_primes.mutate({ below: 50_000, steps: 5 }));
    await job.result({ watch: false });
    const full = await rawWatch(alice, job.id, '0');
    const ids = full.messages.map((m) => Number(m.id));
    expect(ids).toEqual(ids.map((_, i) => i + 1)); // 1, 2, … — every change, in order
    expect(full.messages.at(-1)!.envelope.status).toBe('done');
    for (const { envelope } of full.messages)
      expect(verify(envelope, alice!.key.secret)).toBe(true);

    const resumed = await rawWatch(alice, job.id, '3');
    expect(resumed.messages.map((m) => Number(m.id))).toEqual(ids.slice(3));
    // Each reconnect is a new signed call: a fresh nonce, so the replay check never trips.
    const again = await rawWatch(alice, job.id, '3');
    expect(again.messages.map((m) => m.id)).toEqual(resumed.messages.map((m) => m.id));
  });

  it('is 404 to every other client, on poll, cancel and watch', async () => {
    await start();
    const mine = clientFor(alice);
    const theirs = clientFor(bob);
    const job = jobHandle(mine, await mine.held.mutate({ label: 'private' }));
    const reasons = await Promise.all([
      theirs.poll_job.mutate({ job_id: job.id }).catch(signetReason),
      theirs.cancel_job.mutate({ job_id: job.id }).catch(signetReason),
    ]);
    expect(reasons).toEqual(['JOB_NOT_FOUND', 'JOB_NOT_FOUND']);
    const watched = await rawWatch(bob, job.id);
    expect(watched.messages).toEqual([]);
    expect(watched.errors[0]?.data?.reason).toBe('JOB_NOT_FOUND');
    expect((await job.poll()).status).toBe('running');
  });

  it('refuses a watch whose input is missing or not JSON with PARSE_ERROR, on the stream', async () => {
    await start();
    for (const query of ['', '?input=not-json', '?input=%7B%22v%22']) {
      const response = await fetch(`${server!.url}/trpc/watch_job${query}`, {
        signal: AbortSignal.timeout(10_000),
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/event-stream');
      const events = parseSse(await response.text());
      expect(events.map((e) => e.event)).toEqual(['connected', 'serialized-error']);
      expect(JSON.parse(events[1]!.data!).data).toMatchObject({
        reason: 'PARSE_ERROR',
        httpStatus: 400,
        path: 'watch_job',
      });
    }
  });

  it('forgets a finished job after the retention time', async () => {
    let clock = Date.now();
    const now = () => clock;
    await start({ retentionMs: 60_000, now });
    const client = clientFor(alice, now);
    const job = jobHandle(client, await client.count_primes.mutate({ below: 100, steps: 1 }));
    expect(await job.result({ watch: false })).toEqual({ count: 25 });
    clock += 59_000;
    expect((await job.poll()).status).toBe('done');
    clock += 2_000;
    await expect(job.poll()).rejects.toSatisfy((error) => signetReason(error) === 'JOB_NOT_FOUND');
  });

  it('reports a failed handler as TOOL_FAILED with a safe message', async () => {
    await start();
    const client = clientFor(alice);
    const internal = jobHandle(client, await client.failing.mutate({ friendly: false }));
    const error = await internal.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobFailedError);
    expect(error).toMatchObject({ code: 'TOOL_FAILED', message: 'the job failed' });
    const friendly = jobHandle(client, await client.failing.mutate({ friendly: true }));
    expect(
      await friendly.poll().then(async (s) => (s.status === 'error' ? s : friendly.result())),
    ).toMatchObject({
      status: 'error',
      error: { code: 'TOOL_FAILED', message: 'the input file was empty' },
    });
  });

  it('takes clients in turn when the queue is full', async () => {
    await start({ concurrency: 1 });
    const a = clientFor(alice);
    const b = clientFor(bob);
    for (const label of ['a1', 'a2', 'a3']) await a.held.mutate({ label });
    await b.held.mutate({ label: 'b1' });
    for (const label of ['a1', 'b1', 'a2']) {
      await heldJobs.until(() => heldJobs.started.includes(label));
      heldJobs.release(label);
    }
    await heldJobs.until(() => heldJobs.started.length === 4);
    expect(heldJobs.started).toEqual(['a1', 'b1', 'a2', 'a3']);
  });

  it('on shutdown lets running jobs finish within the grace period, then interrupts the rest', async () => {
    const running = await start({ concurrency: 2 });
    const client = clientFor(alice);
    const quick = jobHandle(
      client,
      await client.count_primes.mutate({ below: 20_000, steps: 200 }),
    );
    const stuck = jobHandle(client, await client.held.mutate({ label: 'stuck' }));
    await heldJobs.until(() => heldJobs.started.includes('stuck'));
    await running.close({ graceMs: 300 });
    server = undefined;
    expect(heldJobs.aborted.has('stuck')).toBe(true);
    // What the next server on this file will answer: nothing is left running.
    const store = new SqliteFile(databasePath);
    try {
      expect(store.get(quick.id)?.status).toBe('done');
      expect(store.get(stuck.id)).toMatchObject({
        status: 'error',
        error: { code: 'INTERRUPTED' },
      });
      expect(store.listByStatus(['queued', 'running'])).toEqual([]);
    } finally {
      store.close();
    }
  });
});

describe('jobs of the shipped tools', () => {
  const appKeyring = generateKeyringFile({ serverId: 'mcp-server-001', clientIds: ['client-001'] });
  const me = { clientId: 'client-001', key: appKeyring.clients[0]!.keys[0]! };
  let app: AppServer | undefined;
  afterEach(async () => {
    await app?.close({ graceMs: 0 });
    app = undefined;
  });

  async function startShipped(env: Record<string, string> = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'signet-app-jobs-'));
    writeFileSync(join(dir, 'keyring.json'), JSON.stringify(appKeyring));
    app = await startApp(
      loadConfig({
        SIGNET_PORT: '0',
        SIGNET_KEYRING: join(dir, 'keyring.json'),
        SIGNET_STORE: `sqlite:${join(dir, 'signet.db')}`,
        SIGNET_AUDIT: 'off',
        ...env,
      }),
      pino({ level: 'silent' }),
    );
    return createSignetClient<SignetRouter<typeof tools>>({
      url: app.url,
      serverId: 'mcp-server-001',
      ...me,
    });
  }

  it('cancelling a running 20 s start_long_task ends it within a second', async () => {
    // One handler at a time: the queued job can only start once the cancelled handler has
    // seen the abort and returned.
    const client = await startShipped({ SIGNET_CONCURRENCY: '1' });
    const long = jobHandle(
      client,
      await client.start_long_task.mutate({ seconds: 20, payload: {} }),
    );
    const next = jobHandle(
      client,
      await client.start_long_task.mutate({ seconds: 1, payload: { n: 2 } }),
    );
    await eventually(async () => ((await long.poll()).status === 'running' ? true : undefined));
    expect((await next.poll()).status).toBe('queued');
    const cancelledAt = Date.now();
    expect((await long.cancel()).status).toBe('cancelled');
    await eventually(
      async () => ((await next.poll()).status !== 'queued' ? true : undefined),
      1_000,
    );
    expect(Date.now() - cancelledAt).toBeLessThan(1_000);
    expect((await long.poll()).status).toBe('cancelled');
    expect(await next.result()).toEqual({ n: 2 });
  });

  it('a dropped watch stream resumes after the last event, losing and repeating nothing', async () => {
    await startShipped();
    // A proxy that cuts the first watch_job stream right after its second event.
    const watchInputs: string[] = [];
    const proxy = createServer((req, res) => {
      const isWatch = req.url?.startsWith('/trpc/watch_job') ?? false;
      if (isWatch) watchInputs.push(decodeURIComponent(req.url!.split('input=')[1] ?? ''));
      const cut = isWatch && watchInputs.length === 1;
      const upstream = httpRequest(
        `${app!.url}${req.url}`,
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          let events = 0;
          answer.on('data', (chunk: Buffer) => {
            res.write(chunk);
            events += (chunk.toString().match(/(^|\n)id: /g) ?? []).length;
            if (cut && events >= 2) {
              answer.destroy();
              res.socket?.destroy();
            }
          });
          answer.on('end', () => res.end());
        },
      );
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = proxy.address() as AddressInfo;
      const client = createSignetClient<SignetRouter<typeof tools>>({
        url: `http://127.0.0.1:${port}`,
        serverId: 'mcp-server-001',
        ...me,
      });
      const job = jobHandle(
        client,
        await client.start_long_task.mutate({ seconds: 3, payload: { ok: true } }),
      );
      const seen: string[] = [];
      for await (const state of job.watch()) {
        seen.push(`${state.status}:${'progress' in state ? state.progress?.current : ''}`);
      }
      expect(watchInputs.length).toBeGreaterThanOrEqual(2);
      const resumed = JSON.parse(watchInputs[1]!) as { nonce: string; args: { after?: string } };
      const first = JSON.parse(watchInputs[0]!) as { nonce: string };
      expect(resumed.args.after).toBeDefined();
      expect(resumed.nonce).not.toBe(first.nonce);
      expect(seen.at(-1)).toBe('done:');
      expect(new Set(seen).size).toBe(seen.length); // nothing repeated
      // nothing lost: every second of progress arrived
      for (const n of [1, 2, 3]) expect(seen).toContain(`running:${n}`);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});

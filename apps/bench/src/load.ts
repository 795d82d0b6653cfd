// The load generator: runs in a process of its own for a whole `pnpm bench`, takes one plan per
// line on stdin, drives that target and answers with one JSON line on stdout (LoadResult, or
// {"error"}). One process for every slice: starting node and tsx anew for each cost ~1.5 s of
// the run per slice, and a generator that is already warm needs less warm-up.

import { createInterface } from 'node:readline';
import { isDeepStrictEqual } from 'node:util';
import {
  canonicalize,
  ed25519Hex,
  ed25519PrivateKey,
  hmacHex,
  newNonce,
  newRequestId,
  PROTOCOL_VERSION,
  sign,
} from '@signet/protocol';
import autocannon from 'autocannon';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';

export interface Credentials {
  serverId: string;
  clientId: string;
  key: { kid: string; secret: string };
}

/** An Ed25519 client: its private key is base64 of its 32-byte seed. */
export interface Ed25519Credentials {
  serverId: string;
  clientId: string;
  key: { kid: string; alg: 'ed25519'; privateKey: string };
}

export type SigningCredentials = Credentials | Ed25519Credentials;

/**
 * Run for `seconds`, or until `amount` requests have completed (job round trips: `amount`
 * rounded up to a multiple of the connections).
 */
export type Length =
  | { seconds: number; amount?: undefined }
  | { amount: number; seconds?: undefined };

export type LoadPlan =
  | ({
      kind: 'http';
      url: string;
      path: string;
      headers?: Record<string, string>;
      /** A fixed body, or a freshly signed Signet envelope per request (by each client in turn). */
      body:
        | { fixed: unknown }
        | { signed: SigningCredentials[]; tool: string; args: Record<string, unknown> };
      /** Checked once before any timing: the response's JSON must contain this (a deep subset). */
      expect: unknown;
      connections: number;
    } & Length)
  | ({
      kind: 'signet-jobs';
      url: string;
      credentials: Credentials;
      concurrency: number;
    } & Length)
  | ({
      kind: 'bullmq';
      redis: string;
      queue: string;
      concurrency: number;
    } & Length);

export interface LoadResult {
  perSecond: number;
  /** Milliseconds, from every completed request (not autocannon's whole-millisecond histogram). */
  p50: number;
  p99: number;
  total: number;
  errors: number;
}

/** A fresh unsigned envelope, its members in canonical order (so signing need not sort them). */
function envelope(c: SigningCredentials, tool: string, args: Record<string, unknown>) {
  return {
    args,
    client_id: c.clientId,
    kid: c.key.kid,
    nonce: newNonce(),
    request_id: newRequestId(),
    server_id: c.serverId,
    tool,
    ts_ms: Date.now(),
    v: PROTOCOL_VERSION,
  };
}

/**
 * autocannon notices that a run's time is up at its next sample, every second by default: a run
 * of 0.5 s took 1 s. Rates are counted over the run's actual length either way.
 */
const SAMPLE_MS = 100;

/** Stands for a string argument given per call (a job id) in the args of `signer`. */
const HOLE = '\u0003';

/**
 * Signs a fresh envelope per call (new request_id, nonce and ts_ms; HMAC over its canonical
 * form). The canonical text is assembled around the constant parts, computed once, so the
 * generator (which shares the machine's cores with the server) spends its CPU on sending rather
 * than on canonicalizing the same args again. An args value of HOLE is filled per call. The body
 * is that canonical text plus the signature; it is checked once against `sign()` before use.
 */
function signer(
  c: SigningCredentials,
  tool: string,
  args: Record<string, unknown>,
): (hole?: string) => string {
  const template = canonicalize({
    ...envelope(c, tool, args),
    request_id: '\u0001',
    ts_ms: 1,
    nonce: '\u0002',
  });
  const [head, afterNonce] = template.split('"\\u0002"') as [string, string];
  const [mid, afterRequestId] = afterNonce.split('"\\u0001"') as [string, string];
  const [beforeTs, tail] = afterRequestId.split('"ts_ms":1') as [string, string];
  // (The args come first in canonical order: a hole is in `head`.)
  const [beforeHole, afterHole] = head.split('"\\u0003"') as [string, string | undefined];
  const key = 'secret' in c.key ? c.key.secret : ed25519PrivateKey(c.key.privateKey);
  const signature = (text: string) =>
    typeof key === 'string' ? hmacHex(key, text) : ed25519Hex(key, text);
  const next = (hole = '') => {
    const start =
      afterHole === undefined ? head : `${beforeHole}${JSON.stringify(hole)}${afterHole}`;
    const text = `${start}"${newNonce()}"${mid}"${newRequestId()}"${beforeTs}"ts_ms":${Date.now()}${tail}`;
    return `${text.slice(0, -1)},"signature":"${signature(text)}"}`;
  };
  const sample = JSON.parse(next('a-job-id')) as Record<string, unknown>;
  const filled = Object.entries(args).map(([k, v]) => [k, v === HOLE ? 'a-job-id' : v]);
  if (
    !isDeepStrictEqual(sign(sample, key), sample) ||
    !isDeepStrictEqual(sample.args, Object.fromEntries(filled))
  ) {
    throw new Error('the fast signer disagrees with sign()');
  }
  return next;
}

/** Signs as each of `clients` in turn. */
function signers(clients: SigningCredentials[], tool: string, args: Record<string, unknown>) {
  const each = clients.map((c) => signer(c, tool, args));
  let next = 0;
  return () => {
    next = (next + 1) % each.length;
    return each[next]!();
  };
}

/** `actual` contains everything in `expected` (objects: a subset of keys; the rest: equal). */
function contains(actual: unknown, expected: unknown): boolean {
  if (expected === null || typeof expected !== 'object' || Array.isArray(expected)) {
    return isDeepStrictEqual(actual, expected);
  }
  if (actual === null || typeof actual !== 'object') return false;
  return Object.entries(expected).every(([k, v]) =>
    contains((actual as Record<string, unknown>)[k], v),
  );
}

function percentiles(latencies: number[]) {
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99) };
}

type HttpPlan = Extract<LoadPlan, { kind: 'http' }>;

/** One request outside any timing; throws unless it answers 200 with what the plan expects. */
async function verify(plan: HttpPlan, body: string) {
  const response = await fetch(new URL(plan.path, plan.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...plan.headers },
    body,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {}
  if (response.status !== 200 || !contains(json, plan.expect)) {
    throw new Error(`${plan.url}${plan.path} answered ${response.status} ${text}`);
  }
}

async function http(plan: HttpPlan, length: Length, makeBody: () => string) {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: plan.url,
        connections: plan.connections,
        sampleInt: SAMPLE_MS,
        ...(length.amount ? { amount: length.amount } : { duration: length.seconds }),
        requests: [
          {
            method: 'POST',
            path: plan.path,
            headers: { 'content-type': 'application/json', ...plan.headers },
            // Every Signet request is signed afresh: new nonce, current time.
            setupRequest: (request) => ({ ...request, body: makeBody() }),
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    // Sub-millisecond latencies: autocannon's own histogram keeps whole milliseconds.
    instance.on('response', (_client, statusCode, _bytes, ms) => {
      if (statusCode >= 200 && statusCode < 300) latencies.push(ms);
    });
  });
  return {
    perSecond: result.requests.total / result.duration,
    ...percentiles(latencies),
    total: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
  } satisfies LoadResult;
}

/**
 * Runs `roundTrip` from `concurrency` loops for `length`, timing each round trip. A run of some
 * seconds counts the round trips that end within them; one still out when they are up counts as
 * an error if it has not ended a few seconds later (a lost completion would otherwise stretch
 * the run to its timeout, and the rate with it).
 */
async function loops(concurrency: number, length: Length, roundTrip: () => Promise<boolean>) {
  const latencies: number[] = [];
  let errors = 0;
  let started = 0;
  let out = 0;
  const t0 = performance.now();
  const end = t0 + (length.seconds ?? Number.POSITIVE_INFINITY) * 1000;
  const more = () =>
    length.amount === undefined ? performance.now() < end : started++ < length.amount;
  const all = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (more()) {
        const t = performance.now();
        out++;
        const ok = await roundTrip().catch(() => false);
        out--;
        const now = performance.now();
        if (!ok) errors++;
        else if (now <= end) latencies.push(now - t);
      }
    }),
  );
  if (length.seconds === undefined) {
    await all;
  } else {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise((resolve) => {
      timer = setTimeout(resolve, length.seconds * 1000 + 5_000);
    });
    await Promise.race([all, grace]);
    clearTimeout(timer);
    errors += out;
  }
  const seconds = length.seconds ?? (performance.now() - t0) / 1000;
  return {
    perSecond: latencies.length / seconds,
    ...percentiles(latencies),
    total: latencies.length,
    errors,
  } satisfies LoadResult;
}

type JobsPlan = Extract<LoadPlan, { kind: 'signet-jobs' }>;

/**
 * Job round trips as the typed client's `job.result()` makes them: start the job, then watch it
 * (watch_job, Server-Sent Events) until it is done. Each connection of autocannon, the HTTP
 * targets' generator too, repeats the pair; a round trip counts when its stream ends with `done`.
 */
async function signetJobs(plan: JobsPlan, length: Length) {
  const start = signer(plan.credentials, 'noop', {});
  const watch = signer(plan.credentials, 'watch_job', { job_id: HOLE });
  interface Trip {
    startedAt: number;
    jobId?: string;
  }
  const latencies: number[] = [];
  let failed = 0;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    autocannon(
      {
        url: plan.url,
        connections: plan.concurrency,
        sampleInt: SAMPLE_MS,
        // Two requests a round trip; autocannon shares `amount` out evenly between the
        // connections, so each one's share is rounded up to whole round trips (no start is left
        // unwatched).
        ...(length.amount
          ? { amount: Math.ceil(length.amount / plan.concurrency) * plan.concurrency * 2 }
          : { duration: length.seconds }),
        requests: [
          {
            method: 'POST',
            path: '/trpc/noop',
            headers: { 'content-type': 'application/json' },
            setupRequest: (request, context) => {
              (context as Trip).startedAt = performance.now();
              return { ...request, body: start() };
            },
            onResponse: (status, body, context) => {
              const answer = status === 200 ? (JSON.parse(body) as StartAnswer) : undefined;
              (context as Trip).jobId = answer?.result?.data?.result?.job_id;
            },
          },
          {
            method: 'GET',
            setupRequest: (request, context) => {
              // (A failed start is watched as no job: that call fails too, and counts as one error.)
              const input = watch((context as Trip).jobId ?? 'not-started');
              return { ...request, path: `/trpc/watch_job?input=${encodeURIComponent(input)}` };
            },
            onResponse: (status, body, context) => {
              if (status === 200 && body.includes('"status":"done"')) {
                latencies.push(performance.now() - (context as Trip).startedAt);
              } else {
                failed++;
              }
            },
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
  return {
    perSecond: latencies.length / result.duration,
    ...percentiles(latencies),
    total: latencies.length,
    errors: failed + result.errors + result.timeouts,
  } satisfies LoadResult;
}

interface StartAnswer {
  result?: { data?: { result?: { job_id?: string } } };
}

async function bullmq(plan: Extract<LoadPlan, { kind: 'bullmq' }>, length: Length) {
  const connection = new Redis(plan.redis, { maxRetriesPerRequest: null });
  const queue = new Queue(plan.queue, { connection });
  // From the event stream's current end: a QueueEvents reads from `$` when its first read is
  // sent, some time after it is ready, and a job that completed in between was waited for in
  // vain (one error in a run, and a connection idle for the rest of its slice).
  const [last] = await connection.xrevrange(`bull:${plan.queue}:events`, '+', '-', 'COUNT', 1);
  const events = new QueueEvents(plan.queue, {
    connection: new Redis(plan.redis, { maxRetriesPerRequest: null }),
    lastEventId: last?.[0] ?? '0-0',
  });
  // waitUntilFinished adds a listener per job in flight.
  queue.setMaxListeners(0);
  events.setMaxListeners(0);
  await events.waitUntilReady();
  try {
    return await loops(plan.concurrency, length, async () => {
      const job = await queue.add('noop', {}, { removeOnComplete: { age: 3600 } });
      await job.waitUntilFinished(events, 30_000);
      return true;
    });
  } finally {
    await events.close();
    await queue.close();
    connection.disconnect();
  }
}

const lengthOf = (plan: LoadPlan): Length =>
  plan.amount === undefined ? { seconds: plan.seconds } : { amount: plan.amount };

async function run(plan: LoadPlan): Promise<LoadResult> {
  switch (plan.kind) {
    case 'http': {
      const { body } = plan;
      const fixed = 'fixed' in body ? JSON.stringify(body.fixed) : '';
      const makeBody = 'signed' in body ? signers(body.signed, body.tool, body.args) : () => fixed;
      await verify(plan, makeBody());
      return http(plan, lengthOf(plan), makeBody);
    }
    case 'signet-jobs':
      return signetJobs(plan, lengthOf(plan));
    case 'bullmq':
      return bullmq(plan, lengthOf(plan));
  }
}

export type GeneratorAnswer = LoadResult | { error: string };

if (import.meta.url === `file://${process.argv[1]}`) {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const answer: GeneratorAnswer = await run(JSON.parse(line) as LoadPlan).catch(
      (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }),
    );
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  }
  process.exit(0);
}

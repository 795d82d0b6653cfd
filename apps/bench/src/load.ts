// The load generator: runs in a process of its own, drives one target, prints one JSON line.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  canonicalize,
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

export type LoadPlan =
  | {
      kind: 'http';
      url: string;
      path: string;
      headers?: Record<string, string>;
      /** A fixed body, or a freshly signed Signet envelope per request. */
      body:
        | { fixed: unknown }
        | { signed: Credentials; tool: string; args: Record<string, unknown> };
      connections: number;
      warmupSeconds: number;
      /** Run for this long, or for exactly `amount` requests. */
      seconds?: number;
      amount?: number;
    }
  | {
      kind: 'signet-jobs';
      url: string;
      credentials: Credentials;
      concurrency: number;
      seconds: number;
    }
  | { kind: 'bullmq'; redis: string; queue: string; concurrency: number; seconds: number };

export interface LoadResult {
  perSecond: number;
  p50: number;
  p99: number;
  total: number;
  errors: number;
}

/**
 * Signs a fresh envelope per call (new request_id, nonce and ts_ms; HMAC over its canonical
 * form). The canonical text is assembled around the constant parts, computed once, so the
 * generator spends its CPU on sending rather than on canonicalizing the same args again; the
 * body sent is that canonical text plus the signature, which is exactly what a client signs.
 */
function signer(c: Credentials, tool: string, args: Record<string, unknown>): () => string {
  const probe = {
    v: PROTOCOL_VERSION,
    request_id: '\u0001',
    ts_ms: 1,
    client_id: c.clientId,
    server_id: c.serverId,
    tool,
    args,
    nonce: '\u0002',
    kid: c.key.kid,
  };
  const template = canonicalize(probe);
  const [head, afterNonce] = template.split('"\\u0002"') as [string, string];
  const [mid, afterRequestId] = afterNonce.split('"\\u0001"') as [string, string];
  const [beforeTs, tail] = afterRequestId.split('"ts_ms":1') as [string, string];
  return () => {
    const text = `${head}"${newNonce()}"${mid}"${newRequestId()}"${beforeTs}"ts_ms":${Date.now()}${tail}`;
    return `${text.slice(0, -1)},"signature":"${hmacHex(c.key.secret, text)}"}`;
  };
}

function signedBody(c: Credentials, tool: string, args: Record<string, unknown>): string {
  return JSON.stringify(
    sign(
      {
        v: PROTOCOL_VERSION,
        request_id: newRequestId(),
        ts_ms: Date.now(),
        client_id: c.clientId,
        server_id: c.serverId,
        tool,
        args,
        nonce: newNonce(),
        kid: c.key.kid,
      },
      c.key.secret,
    ),
  );
}

async function http(plan: Extract<LoadPlan, { kind: 'http' }>, seconds?: number, amount?: number) {
  const { body } = plan;
  const fixed = 'fixed' in body ? JSON.stringify(body.fixed) : '';
  const makeBody = 'signed' in body ? signer(body.signed, body.tool, body.args) : () => fixed;
  const result = await autocannon({
    url: plan.url,
    connections: plan.connections,
    ...(amount ? { amount } : { duration: seconds ?? 1 }),
    requests: [
      {
        method: 'POST',
        path: plan.path,
        headers: { 'content-type': 'application/json', ...plan.headers },
        // Every Signet request is signed afresh: new nonce, current time.
        setupRequest: (request) => ({ ...request, body: makeBody() }),
      },
    ],
  });
  const elapsed = result.duration;
  return {
    perSecond: result.requests.total / elapsed,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
  } satisfies LoadResult;
}

/** Runs `worker` from `concurrency` loops for `seconds`, timing each round trip. */
async function loops(concurrency: number, seconds: number, roundTrip: () => Promise<boolean>) {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        if (await roundTrip().catch(() => false)) latencies.push(performance.now() - t);
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return {
    perSecond: latencies.length / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    total: latencies.length,
    errors,
  };
}

async function signetJobs(plan: Extract<LoadPlan, { kind: 'signet-jobs' }>, seconds: number) {
  const post = async (tool: string, args: Record<string, unknown>) => {
    const response = await fetch(`${plan.url}/trpc/${tool}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: signedBody(plan.credentials, tool, args),
    });
    return (
      (await response.json()) as {
        result?: { data: { status: string; result: { job_id?: string } } };
      }
    ).result?.data;
  };
  // Start, then poll (immediately, then every 2 ms) until done. (Polling measured faster than
  // a watch_job stream per job: an SSE request costs the server more than a few polls.)
  return loops(plan.concurrency, seconds, async () => {
    const started = await post('noop', {});
    const jobId = started?.result.job_id;
    if (!jobId) return false;
    for (;;) {
      const state = await post('poll_job', { job_id: jobId });
      if (!state) return false;
      if (state.status === 'done') return true;
      if (state.status === 'error' || state.status === 'cancelled') return false;
      await sleep(2);
    }
  });
}

async function bullmq(plan: Extract<LoadPlan, { kind: 'bullmq' }>, seconds: number) {
  const connection = new Redis(plan.redis, { maxRetriesPerRequest: null });
  const queue = new Queue(plan.queue, { connection });
  const events = new QueueEvents(plan.queue, {
    connection: new Redis(plan.redis, { maxRetriesPerRequest: null }),
  });
  // waitUntilFinished adds a listener per job in flight.
  queue.setMaxListeners(0);
  events.setMaxListeners(0);
  await events.waitUntilReady();
  try {
    return await loops(plan.concurrency, seconds, async () => {
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

async function run(plan: LoadPlan): Promise<LoadResult> {
  switch (plan.kind) {
    case 'http':
      if (plan.warmupSeconds > 0) await http(plan, plan.warmupSeconds);
      return http(plan, plan.seconds, plan.amount);
    case 'signet-jobs':
      await signetJobs(plan, 1);
      return signetJobs(plan, plan.seconds);
    case 'bullmq':
      await bullmq(plan, 1);
      return bullmq(plan, plan.seconds);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = JSON.parse(process.argv[2]!) as LoadPlan;
  console.log(JSON.stringify(await run(plan)));
  process.exit(0);
}

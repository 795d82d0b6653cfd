// The soak's load: signed calls from the typed client, jobs started and then watched, polled or
// cancelled, and calls the server must refuse, from several clients at once. Bounded: at most
// CALL_LOOPS + JOB_LOOPS operations in flight, calls paced to CALLS_PER_SECOND, every operation
// under a timeout, and no operation starts once the run is over.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createSignetClient,
  JobFailedError,
  jobHandle,
  signetReason,
  signRequest,
} from '@signet/client';
import { newRequestId, type RequestEnvelope } from '@signet/protocol';
import type { SignetRouter } from '@signet/server';
import type { tools } from '@signet/server-app/contracts';
import type { Credentials } from '../load.ts';
import type { Tally } from './tally.ts';

export const CALL_LOOPS = 16;
export const JOB_LOOPS = 8;
/**
 * Paced rather than flat out: the soak is about what a steady load leaves behind, and a steady
 * rate keeps the store's steady size (its nonces) steady too; this is also a shared machine.
 */
export const CALLS_PER_SECOND = 400;
/** A job loop starts at most one job a second; the server runs 4 at once (SIGNET_CONCURRENCY). */
const JOB_LOOP_MS = 1_000;
const CALL_TIMEOUT_MS = 20_000;
const JOB_TIMEOUT_MS = 60_000;

type Client = ReturnType<typeof createSignetClient<SignetRouter<typeof tools>>>;

interface Context {
  url: string;
  credentials: Credentials;
  client: Client;
  signal: AbortSignal;
}

/** An operation of the mix: what it returns when all went as it should is `expect`. */
interface Operation {
  kind: string;
  expect: string;
  weight: number;
  run(ctx: Context): Promise<string>;
}

/** The outcome of a failed call, as a label: `409 REPLAYED_NONCE`, `timeout`, `job CANCELLED`. */
export function outcomeOf(error: unknown): string {
  if (error instanceof JobFailedError) return `job ${error.code}`;
  const data = (error as { data?: { httpStatus?: unknown; reason?: unknown } }).data;
  if (typeof data?.httpStatus === 'number') {
    return `${data.httpStatus}${typeof data.reason === 'string' ? ` ${data.reason}` : ''}`;
  }
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'timeout';
  const reason = signetReason(error);
  return reason ? `refused by the client: ${reason}` : 'transport error';
}

/** A call signed as the typed client signs it, to be sent by hand. */
function signed(c: Credentials, tool: string, args: Record<string, unknown>): RequestEnvelope {
  return signRequest(c, tool, args, { now: Date.now() });
}

/** Posts a hand-built envelope; `401 BAD_SIGNATURE` or `200`, as the server answered. */
async function post(ctx: Context, tool: string, body: RequestEnvelope): Promise<string> {
  const response = await fetch(`${ctx.url}/trpc/${tool}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: ctx.signal,
  });
  const text = await response.text();
  let reason: unknown;
  try {
    reason = (JSON.parse(text) as { error?: { data?: { reason?: unknown } } }).error?.data?.reason;
  } catch {
    // (Not JSON: the status says enough.)
  }
  return typeof reason === 'string' ? `${response.status} ${reason}` : String(response.status);
}

const numbers = () =>
  Array.from({ length: 1 + Math.floor(Math.random() * 50) }, () => Math.random());

/** Signed calls and refusals: quick, paced. */
export const CALLS: Operation[] = [
  {
    kind: 'batch_sum (typed client)',
    expect: '200',
    weight: 40,
    async run({ client, signal }) {
      const input = numbers();
      const answer = await client.batch_sum.mutate({ numbers: input }, { signal });
      return answer.count === input.length ? '200' : 'wrong answer';
    },
  },
  {
    kind: 'server_identity (typed client)',
    expect: '200',
    weight: 15,
    async run({ client, credentials, signal }) {
      const answer = await client.server_identity.mutate({}, { signal });
      return answer.server_id === credentials.serverId ? '200' : 'wrong answer';
    },
  },
  {
    kind: 'refused: bad signature',
    expect: '401 BAD_SIGNATURE',
    weight: 10,
    async run(ctx) {
      const forger = {
        ...ctx.credentials,
        key: { ...ctx.credentials.key, secret: 'x'.repeat(64) },
      };
      return post(ctx, 'batch_sum', signed(forger, 'batch_sum', { numbers: [1] }));
    },
  },
  {
    kind: 'refused: replayed nonce',
    expect: '200, then 409 REPLAYED_NONCE',
    weight: 10,
    async run(ctx) {
      const request = signed(ctx.credentials, 'batch_sum', { numbers: [1, 2] });
      const first = await post(ctx, 'batch_sum', request);
      return `${first}, then ${await post(ctx, 'batch_sum', request)}`;
    },
  },
  {
    kind: 'refused: invalid args',
    expect: '400 INVALID_ARGS',
    weight: 10,
    async run(ctx) {
      const args = { numbers: [] };
      return post(ctx, 'batch_sum', signed(ctx.credentials, 'batch_sum', args));
    },
  },
  {
    kind: 'refused: unknown job',
    expect: '404 JOB_NOT_FOUND',
    weight: 10,
    async run(ctx) {
      const args = { job_id: `no-such-job-${newRequestId()}` };
      return post(ctx, 'poll_job', signed(ctx.credentials, 'poll_job', args));
    },
  },
];

async function startJob({ client, signal }: Context) {
  const payload = { n: Math.random() };
  const ticket = await client.start_long_task.mutate({ seconds: 1, payload }, { signal });
  return { job: jobHandle(client, ticket), payload };
}

/** Jobs: each started, then followed to its end one way or another. */
export const JOBS: Operation[] = [
  {
    kind: 'job: start, watch (SSE)',
    expect: 'done',
    weight: 50,
    async run(ctx) {
      const { job, payload } = await startJob(ctx);
      const output = await job.result({ signal: ctx.signal });
      return output.n === payload.n ? 'done' : 'wrong output';
    },
  },
  {
    kind: 'job: start, poll',
    expect: 'done',
    weight: 25,
    async run(ctx) {
      const { job, payload } = await startJob(ctx);
      for (;;) {
        await sleep(250, undefined, { signal: ctx.signal });
        const state = await job.poll();
        if (state.status === 'done') return state.output.n === payload.n ? 'done' : 'wrong output';
        if (state.status !== 'queued' && state.status !== 'running') return state.status;
      }
    },
  },
  {
    kind: 'job: start, cancel',
    expect: 'cancelled',
    weight: 25,
    async run(ctx) {
      const { job } = await startJob(ctx);
      const state = await job.cancel();
      if (state.status !== 'queued' && state.status !== 'running') return state.status;
      // (A job running in another process may take a moment to stop.)
      try {
        await job.result({ signal: ctx.signal, watch: false });
        return 'done';
      } catch (error) {
        if (error instanceof JobFailedError && error.code === 'CANCELLED') return 'cancelled';
        throw error;
      }
    },
  },
];

function pick(operations: Operation[]): Operation {
  let r = Math.random() * operations.reduce((n, o) => n + o.weight, 0);
  for (const o of operations) {
    r -= o.weight;
    if (r < 0) return o;
  }
  return operations.at(-1)!;
}

export interface MixOptions {
  url: string;
  clients: Credentials[];
  tally: Tally;
  /** True once no new operation should start. */
  over(): boolean;
}

/** Runs the mix until `over()`; resolves once the operations in flight have ended. */
export async function runMix(opts: MixOptions): Promise<void> {
  const typed = opts.clients.map((credentials) => ({
    credentials,
    client: createSignetClient<SignetRouter<typeof tools>>({ url: opts.url, ...credentials }),
  }));
  const once = async (operation: Operation, timeoutMs: number) => {
    const { credentials, client } = typed[Math.floor(Math.random() * typed.length)]!;
    const signal = AbortSignal.timeout(timeoutMs);
    const done = opts.tally.begin(operation.kind);
    let outcome: string;
    try {
      outcome = await operation.run({ url: opts.url, credentials, client, signal });
    } catch (error) {
      outcome = outcomeOf(error);
      done(outcome, operation.expect, error instanceof Error ? error.message : String(error));
      return;
    }
    done(outcome, operation.expect);
  };

  // One slot every 1/CALLS_PER_SECOND s, shared by the call loops.
  const interval = 1_000 / CALLS_PER_SECOND;
  let nextSlot = performance.now();
  const callLoop = async () => {
    while (!opts.over()) {
      const now = performance.now();
      const slot = Math.max(now, nextSlot);
      nextSlot = slot + interval;
      if (slot > now) await sleep(slot - now);
      if (opts.over()) return;
      await once(pick(CALLS), CALL_TIMEOUT_MS);
    }
  };
  const jobLoop = async (i: number) => {
    // (Spread over the first second, not all at once.)
    await sleep((i * JOB_LOOP_MS) / JOB_LOOPS);
    while (!opts.over()) {
      const started = performance.now();
      await once(pick(JOBS), JOB_TIMEOUT_MS);
      const left = JOB_LOOP_MS - (performance.now() - started);
      if (left > 0 && !opts.over()) await sleep(left);
    }
  };
  await Promise.all([
    ...Array.from({ length: CALL_LOOPS }, callLoop),
    ...Array.from({ length: JOB_LOOPS }, (_, i) => jobLoop(i)),
  ]);
}

// Issue 21, the client's side: a man in the middle without the key, between the typed client and
// the app over real HTTP (a `fetch` that rewrites responses). A signed refusal is never taken for
// a result (V1); a clock correction comes only from a fast round trip and is bounded (W6); a
// reason code comes only from a signed envelope (W7); an unsigned `return` before a signed
// terminal state is a dropped stream, not the end of the job (W8).
import {
  createSignetClient,
  jobHandle,
  signetReason,
  signRequest,
  verifyResponse,
} from '@signet/client';
import { parseSse, postEnvelope } from '@signet/server/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  alice,
  cleanUpAfterEachTest,
  keyringOf,
  type Router,
  rejectionOf,
  SERVER_ID,
  startTestApp,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

let url: string;
beforeEach(async () => {
  url = (await startTestApp(writeKeyring(keyringOf([alice])))).url;
});

const credentials = () => ({
  url,
  serverId: SERVER_ID,
  clientId: alice.clientId,
  key: { kid: alice.kid, secret: alice.secret },
});

/** The typed client, its calls passing through `fetch` (the man in the middle). */
function clientThrough(fetch: typeof globalThis.fetch, now?: () => number) {
  return createSignetClient<Router>({ ...credentials(), fetch, ...(now ? { now } : {}) });
}

const toolOf = (input: unknown) => new URL(String(input)).pathname.replace('/trpc/', '');
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const sse = (text: string) =>
  new Response(text, { status: 200, headers: { 'content-type': 'text/event-stream' } });

/**
 * Sends each call of `tools` twice: the first spends its nonce, and the second's signed
 * REPLAYED_NONCE refusal goes back to the client dressed as a result (V1): as a mutation's
 * `{"result":{"data":…}}`, or as a watch stream's one event.
 */
function replayedAsResult(tools: string[]): typeof globalThis.fetch {
  return async (input, init) => {
    if (!tools.includes(toolOf(input))) return fetch(input, init);
    await (await fetch(input, init)).text();
    const replayed = await fetch(input, init);
    if (toolOf(input) !== 'watch_job') {
      const refusal = (await replayed.json()) as { error: { data: { envelope: unknown } } };
      return json({ result: { data: refusal.error.data.envelope } });
    }
    const refusal = parseSse(await replayed.text()).find((e) => e.event === 'serialized-error')!;
    const { envelope } = (JSON.parse(refusal.data!) as { data: { envelope: unknown } }).data;
    return sse(`data: ${JSON.stringify(envelope)}\n\n`);
  };
}

async function finishedJob(payload: Record<string, unknown>) {
  const client = createSignetClient<Router>(credentials());
  const ticket = await client.start_long_task.mutate({ seconds: 1, payload });
  await jobHandle(client, ticket).result({ watch: false });
  return ticket;
}

/** The client's refusal of a signed REPLAYED_NONCE refusal passed off as a result. */
function expectRefusedAsResult(error: unknown) {
  expect(signetReason(error)).toBe('BAD_RESPONSE_ENVELOPE');
  expect((error as Error).message).toMatch(/signed REPLAYED_NONCE refusal is not/);
}

describe('V1: a signed refusal is never taken for a result', () => {
  it('a tool call answered with its replay refusal as HTTP 200 is refused', async () => {
    const client = clientThrough(replayedAsResult(['batch_sum']));
    const error = await rejectionOf(client.batch_sum.mutate({ numbers: [1, 2] }));
    expectRefusedAsResult(error);
  });

  it('verifyResponse (the success path) refuses a refusal envelope', async () => {
    const request = signRequest(credentials(), 'batch_sum', { numbers: [1] }, { now: Date.now() });
    await postEnvelope(url, 'batch_sum', request);
    const replayed = await postEnvelope(url, 'batch_sum', request);
    expect(replayed.status).toBe(409);
    const envelope = replayed.json?.error?.data?.envelope;
    expect(() => verifyResponse(credentials(), request, envelope)).toThrow(
      expect.objectContaining({ problem: 'BAD_RESPONSE_ENVELOPE' }),
    );
  });

  it('poll_job on a done job answered with its replay refusal is refused', async () => {
    const ticket = await finishedJob({ a: 1 });
    const client = clientThrough(replayedAsResult(['poll_job']));
    const error = await rejectionOf(client.poll_job.mutate({ job_id: ticket.job_id }));
    expectRefusedAsResult(error);
  });

  it('job.result() is not turned into a JobFailedError by a replay refusal', async () => {
    const ticket = await finishedJob({ a: 1 });
    const client = clientThrough(replayedAsResult(['watch_job']));
    const error = await rejectionOf(jobHandle(client, ticket).result());
    expect(error).not.toHaveProperty('name', 'JobFailedError');
    expectRefusedAsResult(error);
  });
});

describe('W6: a clock correction only from a fast round trip, and bounded', () => {
  /** Counts the calls that reach the app; `hold` ms pass on the client's clock per answer. */
  function clockedFetch(hold: number, clock: { ms: number }) {
    const calls = { count: 0 };
    const through: typeof globalThis.fetch = async (input, init) => {
      calls.count++;
      const response = await fetch(input, init);
      clock.ms += hold;
      return response;
    };
    return { calls, through };
  }

  it('a STALE_REQUEST answered slowly is not used to correct the clock', async () => {
    // The client's clock is 10 minutes fast, and its answer takes 3 s (by that clock).
    const clock = { ms: 600_000 };
    const { calls, through } = clockedFetch(3_000, clock);
    const client = clientThrough(through, () => Date.now() + clock.ms);
    const error = await rejectionOf(client.batch_sum.mutate({ numbers: [1] }));
    expect(signetReason(error)).toBe('STALE_REQUEST');
    expect(calls.count).toBe(1);
  });

  it('a correction of more than a day is not applied', async () => {
    const clock = { ms: -2 * 24 * 3_600_000 };
    const { calls, through } = clockedFetch(0, clock);
    const client = clientThrough(through, () => Date.now() + clock.ms);
    const error = await rejectionOf(client.batch_sum.mutate({ numbers: [1] }));
    expect(signetReason(error)).toBe('STALE_REQUEST');
    expect(calls.count).toBe(1);
  });

  it('a fast round trip within bounds still corrects it', async () => {
    const clock = { ms: 600_000 };
    const { calls, through } = clockedFetch(5, clock);
    const client = clientThrough(through, () => Date.now() + clock.ms);
    await expect(client.batch_sum.mutate({ numbers: [1] })).resolves.toEqual({
      count: 1,
      total: 1,
    });
    expect(calls.count).toBe(2);
  });
});

/** tRPC's error shape for an unsigned refusal, as the app writes it, claiming `reason`. */
function unsignedRefusal(tool: string, reason: string, httpStatus: number) {
  return {
    error: {
      message: 'not found',
      code: -32004,
      data: { code: 'NOT_FOUND', httpStatus, path: tool, reason },
    },
  };
}

describe('W7: a reason code comes only from a signed envelope', () => {
  it('an unsigned JOB_NOT_FOUND answering poll_job is refused, not reported as such', async () => {
    const ticket = await finishedJob({ a: 1 });
    const forged: typeof globalThis.fetch = async (input, init) =>
      toolOf(input) === 'poll_job'
        ? json(unsignedRefusal('poll_job', 'JOB_NOT_FOUND', 404), 404)
        : fetch(input, init);
    const error = await rejectionOf(jobHandle(clientThrough(forged), ticket).poll());
    expect(signetReason(error)).toBe('BAD_RESPONSE_ENVELOPE');
    expect((error as Error).message).toMatch(/unsigned error claims "JOB_NOT_FOUND"/);
  });

  it('an unsigned JOB_NOT_FOUND ending a watch: job.result() polls, and gets the output', async () => {
    const ticket = await finishedJob({ a: 2 });
    let forgedWatches = 0;
    const forged: typeof globalThis.fetch = async (input, init) => {
      if (toolOf(input) !== 'watch_job') return fetch(input, init);
      forgedWatches++;
      const refusal = unsignedRefusal('watch_job', 'JOB_NOT_FOUND', 404);
      return sse(`event: serialized-error\ndata: ${JSON.stringify(refusal.error)}\n\n`);
    };
    await expect(jobHandle(clientThrough(forged), ticket).result()).resolves.toEqual({ a: 2 });
    expect(forgedWatches).toBe(1);
  });

  it('a reason that may come unsigned (BAD_SIGNATURE) is still reported as itself', async () => {
    const client = createSignetClient<Router>({
      ...credentials(),
      key: { kid: alice.kid, secret: 'x'.repeat(43) },
    });
    const error = await rejectionOf(client.batch_sum.mutate({ numbers: [1] }));
    expect(signetReason(error)).toBe('BAD_SIGNATURE');
  });
});

describe('W8: an unsigned return before a signed terminal state is a dropped stream', () => {
  it('the watch reconnects with a new signed call and ends with the real terminal state', async () => {
    const ticket = await finishedJob({ a: 3 });
    const watches: string[] = [];
    const cut: typeof globalThis.fetch = async (input, init) => {
      if (toolOf(input) !== 'watch_job') return fetch(input, init);
      watches.push(String(input));
      const response = await fetch(input, init);
      if (watches.length > 1) return response;
      // The first stream: its first signed event, then an unsigned `return`.
      const first = parseSse(await response.text()).find((e) => e.event === undefined)!;
      return sse(`id: ${first.id}\ndata: ${first.data}\n\nevent: return\ndata: \n\n`);
    };
    const client = clientThrough(cut);
    const states: string[] = [];
    await new Promise<void>((resolve, reject) => {
      client.watch_job.subscribe(
        { job_id: ticket.job_id, after: '0' },
        {
          onData: (state) => states.push(state.status),
          onError: reject,
          onComplete: resolve,
        },
      );
    });
    expect(watches).toHaveLength(2);
    // A reconnect is a new signed call (never the old URL), from after the last event.
    expect(watches[1]).not.toBe(watches[0]);
    expect(states[0]).not.toBe('done');
    expect(states.at(-1)).toBe('done');
  });

  it('job.watch() does not end cleanly before the terminal state', async () => {
    const ticket = await finishedJob({ a: 4 });
    let cuts = 0;
    const cut: typeof globalThis.fetch = async (input, init) => {
      if (toolOf(input) !== 'watch_job' || cuts > 0) return fetch(input, init);
      cuts++;
      return sse('event: return\ndata: \n\n');
    };
    const seen: string[] = [];
    for await (const state of jobHandle(clientThrough(cut), ticket).watch())
      seen.push(state.status);
    expect(cuts).toBe(1);
    expect(seen).toEqual(['done']);
  });
});

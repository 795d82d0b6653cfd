// The per-client caps of limits.ts: the watch slots, and that a watch's slot is given back
// however its stream ends, even one that is never read. (Over real sockets, on both fronts:
// apps/server/src/limits.test.ts.)
import { getEventListeners } from 'node:events';
import { contractSet } from '@signet/contracts';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { SignetError } from './errors.ts';
import { Keyring } from './keyring.ts';
import { clientLimits, DEFAULT_CLIENT_LIMITS, WatchSlots } from './limits.ts';
import { createSignet, type Signet } from './signet.ts';
import { MemoryStore } from './stores/memory.ts';
import { signedRequest } from './testing/envelopes.ts';
import { HeldJobs, held, jobTestHandlers } from './testing/job-tools.ts';
import { t } from './trpc.ts';

describe('WatchSlots', () => {
  it('holds each client to its cap, and a release (idempotent) gives a slot back', () => {
    const slots = new WatchSlots(2);
    const first = slots.take('alice', undefined);
    slots.take('alice', undefined);
    const refused = (() => {
      try {
        slots.take('alice', undefined);
      } catch (error) {
        return error as SignetError;
      }
    })();
    expect(refused).toBeInstanceOf(SignetError);
    expect(refused?.reason).toBe('RATE_LIMITED');
    expect(refused?.details).toEqual({ limit: 'watch_streams', max: 2 });
    expect(refused?.retryAfter).toBeUndefined();
    slots.take('bob', undefined);
    first();
    first();
    expect(slots.held('alice')).toBe(1);
    slots.take('alice', undefined);
    expect(() => slots.take('alice', undefined)).toThrow(SignetError);
  });

  it("gives a slot back when the call's signal aborts, and leaves no listener behind", () => {
    const slots = new WatchSlots(1);
    const gone = new AbortController();
    slots.take('alice', gone.signal);
    gone.abort();
    expect(slots.held('alice')).toBe(0);
    const kept = new AbortController();
    const release = slots.take('alice', kept.signal);
    release();
    expect(getEventListeners(kept.signal, 'abort')).toHaveLength(0);
    kept.abort();
    expect(slots.held('alice')).toBe(0);
    // A client gone before its slot was taken holds none.
    slots.take('alice', AbortSignal.abort());
    expect(slots.held('alice')).toBe(0);
  });

  it('clientLimits fills in the defaults and refuses what is not a count', () => {
    expect(clientLimits()).toEqual(DEFAULT_CLIENT_LIMITS);
    expect(clientLimits({ watchStreams: 3, unfinishedJobs: Infinity })).toEqual({
      watchStreams: 3,
      unfinishedJobs: Infinity,
    });
    expect(() => clientLimits({ watchStreams: 0 })).toThrow('clientLimits.watchStreams');
    expect(() => clientLimits({ unfinishedJobs: 1.5 })).toThrow('clientLimits.unfinishedJobs');
  });
});

describe("a watch's slot, through the router", () => {
  const SECRET = 'a-test-secret-of-at-least-32-characters';
  const tools = contractSet(held);
  const heldJobs = new HeldJobs();
  let signet: Signet<typeof tools> | undefined;

  afterEach(async () => {
    for (const label of heldJobs.started) heldJobs.release(label);
    await signet?.close({ graceMs: 0 });
  });

  // (No kid: the server tries each of alice's keys.)
  const alice = { serverId: 'limits-server', clientId: 'alice', secret: SECRET };
  const signed = (tool: string, args: Record<string, unknown>) => signedRequest(alice, tool, args);

  it('is given back by the signal of a stream that is never read, or by a refusal after it', async () => {
    signet = await createSignet({
      contracts: tools,
      handlers: { held: jobTestHandlers(heldJobs).held },
      keyring: () =>
        Keyring.parse({
          server_id: 'limits-server',
          clients: [{ client_id: 'alice', keys: [{ kid: 'k1', secret: SECRET }] }],
        }),
      store: new MemoryStore(),
      logger: pino({ level: 'silent' }),
      clientLimits: { watchStreams: 1 },
    });
    const slots = signet.services.watchSlots;
    const callerFor = t.createCallerFactory(signet.router as never) as unknown as (
      ctx: unknown,
      opts?: { signal?: AbortSignal },
    ) => Record<'held' | 'watch_job', (input: unknown) => Promise<unknown>>;
    const caller = (signal?: AbortSignal) => callerFor(signet!.createContext(), { signal });

    const { result } = (await caller().held(signed('held', { label: 'x' }))) as {
      result: { job_id: string };
    };
    const gone = new AbortController();
    await caller(gone.signal).watch_job(signed('watch_job', { job_id: result.job_id }));
    expect(slots.held('alice')).toBe(1);
    gone.abort();
    expect(slots.held('alice')).toBe(0);

    // Refused after the slot was taken (the nonce was spent already): given back at once.
    const replayed = signed('watch_job', { job_id: result.job_id });
    const live = new AbortController();
    await caller(live.signal).watch_job(replayed);
    live.abort();
    await expect(caller().watch_job(replayed)).rejects.toMatchObject({ reason: 'REPLAYED_NONCE' });
    await expect(
      caller().watch_job(signed('watch_job', { job_id: crypto.randomUUID() })),
    ).rejects.toMatchObject({ reason: 'JOB_NOT_FOUND' });
    expect(slots.held('alice')).toBe(0);

    // Read to its end: given back by the stream itself.
    const stream = (await caller().watch_job(
      signed('watch_job', { job_id: result.job_id }),
    )) as AsyncIterable<unknown>;
    heldJobs.release('x');
    let events = 0;
    for await (const _ of stream) events++;
    expect(events).toBeGreaterThan(0);
    expect(slots.held('alice')).toBe(0);
  });
});

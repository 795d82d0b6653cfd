// Adversarial tests over real HTTP: the per-client rate limit (SIGNET_RATE_LIMIT /
// SIGNET_RATE_BURST), on a clock the test moves and in real time. A limited call is a signed 429
// that spends no nonce, one client's budget is its own, and forgeries spend none of it.

import {
  generateSecret,
  Keyring,
  type KeyringFile,
  MemoryStore,
  type RunningSignetServer,
  startSignetServer,
} from '@signet/server';
import { eventually } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import { FRONT, frontConfig } from './testing/front.ts';
import {
  alice,
  apps,
  bob,
  cleanUpAfterEachTest,
  expectOk,
  expectRefusal,
  keyringOf,
  post,
  signed,
  silent,
  startTestApp,
  type Who,
  writeKeyring,
} from './testing/http.ts';
import { tools } from './tools/contracts.ts';
import { createHandlers } from './tools/handlers.ts';

cleanUpAfterEachTest();

// ---- 5. rate limit --------------------------------------------------------------------------------

describe('rate limit (SIGNET_RATE_LIMIT / SIGNET_RATE_BURST)', () => {
  const env = { SIGNET_RATE_LIMIT: '5', SIGNET_RATE_BURST: '5' };

  /** A server on a clock the test moves, limited as the environment says. */
  async function startOnClock(keyring: KeyringFile) {
    const config = frontConfig({ ...env, SIGNET_PORT: '0' });
    expect(config.rateLimit).toEqual({ perSecond: 5, burst: 5 });
    const clock = { now: Date.now() };
    const server: RunningSignetServer<typeof tools> = await startSignetServer({
      contracts: tools,
      handlers: createHandlers(),
      keyring: () => new Keyring(keyring),
      store: new MemoryStore(),
      logger: silent,
      rateLimit: config.rateLimit!,
      httpFront: config.httpFront,
      now: () => clock.now,
    });
    apps.push(server);
    expect(server.httpFront).toBe(FRONT);
    return { server, clock };
  }

  it('the 6th quick call is 429 RATE_LIMITED with Retry-After, signed; another client is unaffected', async () => {
    const { server, clock } = await startOnClock(keyringOf([alice], [bob]));
    const call = (who: Who) => {
      const request = signed(who, 'batch_sum', { numbers: [1] }, { ts_ms: clock.now });
      return post(server.url, 'batch_sum', request).then((reply) => ({ request, reply }));
    };
    for (let i = 0; i < 5; i++) {
      const { request, reply } = await call(alice);
      expectOk(reply, request, alice);
    }
    const { reply: limited } = await call(alice);
    expectRefusal(limited, 429, 'RATE_LIMITED', alice);
    const retryAfter = limited.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Bob's budget is his own.
    for (let i = 0; i < 5; i++) {
      const { request, reply } = await call(bob);
      expectOk(reply, request, bob);
    }
    expectRefusal((await call(alice)).reply, 429, 'RATE_LIMITED', alice);
  });

  it('a rate-limited call does not spend its nonce: the same body succeeds after Retry-After', async () => {
    const { server, clock } = await startOnClock(keyringOf([alice]));
    for (let i = 0; i < 5; i++) {
      const request = signed(alice, 'batch_sum', { numbers: [i] }, { ts_ms: clock.now });
      expectOk(await post(server.url, 'batch_sum', request), request, alice);
    }
    const request = signed(alice, 'batch_sum', { numbers: [7] }, { ts_ms: clock.now });
    const limited = await post(server.url, 'batch_sum', request);
    expectRefusal(limited, 429, 'RATE_LIMITED', alice);
    clock.now += Number(limited.headers.get('retry-after')) * 1000;
    const data = expectOk(await post(server.url, 'batch_sum', request), request, alice);
    expect(data.result).toEqual({ count: 1, total: 7 });
    // Now it is spent.
    expectRefusal(await post(server.url, 'batch_sum', request), 409, 'REPLAYED_NONCE', alice);
  });

  it('forged calls in the name of a client do not spend its budget', async () => {
    const { server, clock } = await startOnClock(keyringOf([alice]));
    const forger: Who = { ...alice, secret: generateSecret() };
    for (let i = 0; i < 20; i++) {
      const forged = signed(forger, 'batch_sum', { numbers: [1] }, { ts_ms: clock.now });
      expectRefusal(await post(server.url, 'batch_sum', forged), 401, 'BAD_SIGNATURE');
    }
    for (let i = 0; i < 5; i++) {
      const request = signed(alice, 'batch_sum', { numbers: [1] }, { ts_ms: clock.now });
      expectOk(await post(server.url, 'batch_sum', request), request, alice);
    }
  });

  it('the app started from the environment limits in real time, and the refused body gets through once the bucket refills', async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice], [bob])), env);
    // 10 calls at once: the burst of 5 passes (plus at most a token or two refilled while a
    // busy machine gets through them), the rest are refused.
    const requests = Array.from({ length: 10 }, (_, i) =>
      signed(alice, 'batch_sum', { numbers: [i] }),
    );
    const replies = await Promise.all(requests.map((r) => post(app.url, 'batch_sum', r)));
    const passed = replies.filter((r) => r.status === 200).length;
    expect(passed).toBeGreaterThanOrEqual(5);
    expect(passed).toBeLessThanOrEqual(7);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(10 - passed);
    const index = replies.findIndex((r) => r.status === 429);
    expectRefusal(replies[index]!, 429, 'RATE_LIMITED', alice);
    expect(replies[index]!.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    const other = signed(bob, 'batch_sum', { numbers: [1] });
    expectOk(await post(app.url, 'batch_sum', other), other, bob);
    // Retry the refused body until it passes (a token refills in 200 ms at 5/s).
    const refused = requests[index]!;
    const statuses: number[] = [];
    const retried = await eventually(
      async () => {
        const reply = await post(app.url, 'batch_sum', refused);
        statuses.push(reply.status);
        return reply.status === 429 ? undefined : reply;
      },
      5_000,
      'the bucket to refill',
    );
    expect(statuses.every((s) => s === 429 || s === 200)).toBe(true);
    expectOk(retried, refused, alice);
  });
});

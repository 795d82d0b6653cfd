// Adversarial tests over real HTTP, checks 5 and 6 of DESIGN 1.4: replay under concurrency and
// across a restart (memory and SQLite stores), and clock skew (a typed client off by 10 minutes
// learns the server's clock from the signed refusal).
import { join } from 'node:path';
import { createSignetClient } from '@signet/client';
import { describe, expect, it } from 'vitest';
import {
  alice,
  cleanUpAfterEachTest,
  expectOk,
  expectRefusal,
  keyringOf,
  post,
  type Router,
  SERVER_ID,
  signed,
  startTestApp,
  tempDir,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

// ---- 1. replay under concurrency, and across a restart ---------------------------------------

describe('replay protection', () => {
  for (const store of ['memory', 'sqlite'] as const) {
    it(`100 concurrent copies of one signed request: one 200, 99 × 409 REPLAYED_NONCE (${store} store)`, async () => {
      const keyringPath = writeKeyring(keyringOf([alice]));
      const app = await startTestApp(keyringPath, {
        SIGNET_STORE: store === 'memory' ? 'memory:' : `sqlite:${join(tempDir(), 'signet.db')}`,
      });
      const request = signed(alice, 'batch_sum', { numbers: [1, 2, 3] });
      const body = JSON.stringify(request);
      const replies = await Promise.all(
        Array.from({ length: 100 }, () => post(app.url, 'batch_sum', body)),
      );
      const ok = replies.filter((r) => r.status === 200);
      const replayed = replies.filter((r) => r.status === 409);
      expect(ok).toHaveLength(1);
      expect(replayed).toHaveLength(99);
      expectOk(ok[0]!, request, alice);
      for (const reply of replayed) expectRefusal(reply, 409, 'REPLAYED_NONCE', alice);
    });
  }

  it('a request captured before a restart is refused after it (SQLite store)', async () => {
    const keyringPath = writeKeyring(keyringOf([alice]));
    const env = { SIGNET_STORE: `sqlite:${join(tempDir(), 'signet.db')}` };
    const first = await startTestApp(keyringPath, env);
    const request = signed(alice, 'batch_sum', { numbers: [40, 2] });
    expectOk(await post(first.url, 'batch_sum', request), request, alice);
    await first.close();

    const second = await startTestApp(keyringPath, env);
    expectRefusal(await post(second.url, 'batch_sum', request), 409, 'REPLAYED_NONCE', alice);
    // The new process works: a fresh call goes through.
    const fresh = signed(alice, 'batch_sum', { numbers: [1] });
    expectOk(await post(second.url, 'batch_sum', fresh), fresh, alice);
  });
});

// ---- 9. clock skew -------------------------------------------------------------------------------

describe('clock skew', () => {
  for (const [label, skew] of [
    ['10 minutes behind', -600_000],
    ['10 minutes ahead', 600_000],
  ] as const) {
    it(`a typed client ${label} learns the offset from the signed refusal and gets through`, async () => {
      const app = await startTestApp(writeKeyring(keyringOf([alice])));
      const statuses: number[] = [];
      const countingFetch: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        statuses.push(response.status);
        return response;
      };
      const client = createSignetClient<Router>({
        url: app.url,
        serverId: SERVER_ID,
        clientId: alice.clientId,
        key: { kid: alice.kid, secret: alice.secret },
        now: () => Date.now() + skew,
        fetch: countingFetch,
      });
      await expect(client.batch_sum.mutate({ numbers: [1, 2] })).resolves.toEqual({
        count: 2,
        total: 3,
      });
      expect(statuses).toEqual([401, 200]);
      // Learnt once: the next call goes straight through.
      await expect(client.batch_sum.mutate({ numbers: [3] })).resolves.toEqual({
        count: 1,
        total: 3,
      });
      expect(statuses).toEqual([401, 200, 200]);
    });
  }

  it("a raw stale call's signed refusal carries the server's clock in details.server_ts_ms", async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice])));
    const request = signed(alice, 'batch_sum', { numbers: [1] }, { ts_ms: Date.now() - 600_000 });
    const before = Date.now();
    const reply = await post(app.url, 'batch_sum', request);
    const after = Date.now();
    const error = expectRefusal(reply, 401, 'STALE_REQUEST', alice);
    const details = error.data.envelope?.error?.details as { server_ts_ms: number };
    expect(details.server_ts_ms).toBeGreaterThanOrEqual(before);
    expect(details.server_ts_ms).toBeLessThanOrEqual(after);
    expect(error.data.details).toEqual(details);
    // The envelope's own ts_ms is the server's clock too (read again when signing).
    expect(error.data.envelope!.ts_ms).toBeGreaterThanOrEqual(details.server_ts_ms);
    expect(error.data.envelope!.ts_ms).toBeLessThanOrEqual(after);
  });
});

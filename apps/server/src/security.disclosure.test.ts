// Adversarial tests over real HTTP: what a refusal gives away. An unknown client and a bad
// signature get byte-identical answers, another client's job looks exactly like a missing one
// (poll, cancel, watch), and no refusal or log line carries a stack trace or a secret.
import { signetReason } from '@signet/client';
import { type RequestEnvelope, verify } from '@signet/protocol';
import { generateSecret, type SignetErrorShape } from '@signet/server';
import { parseSse, watchUrl } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import {
  alice,
  bob,
  capturingLogger,
  cleanUpAfterEachTest,
  expectRefusal,
  keyringOf,
  post,
  rejectionOf,
  signed,
  startTestApp,
  typedClient,
  type Who,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

/** Reads a watch_job SSE stream to its end (bounded). */
async function rawWatch(url: string, request: RequestEnvelope) {
  const response = await fetch(watchUrl(url, request), { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  const events = parseSse(text);
  return {
    status: response.status,
    messages: events.filter((e) => e.event === undefined).map((e) => JSON.parse(e.data!)),
    errors: events
      .filter((e) => e.event === 'serialized-error')
      .map((e) => JSON.parse(e.data!) as SignetErrorShape),
  };
}

// ---- 8. no oracle ---------------------------------------------------------------------------------

describe('no oracle between an unknown client and a bad signature', () => {
  it('same status, reason and body, whatever is wrong', async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice])));
    const stranger: Who = { clientId: 'client-999', kid: 'k1', secret: generateSecret() };
    const forger: Who = { ...alice, secret: generateSecret() };
    const cases = [
      signed(stranger, 'batch_sum', { numbers: [1] }), // unknown client
      signed(forger, 'batch_sum', { numbers: [1] }), // known client, wrong key
      signed({ ...forger, kid: 'k9' }, 'batch_sum', { numbers: [1] }), // unknown kid
      signed(alice, 'batch_sum', { numbers: [1] }, { kid: 'k9' }), // right key, wrong kid
      { ...signed(stranger, 'batch_sum', { numbers: [1] }), kid: undefined }, // no kid
      signed(forger, 'batch_sum', { numbers: [1] }, { kid: undefined }), // no kid, wrong key
    ];
    const replies = await Promise.all(cases.map((body) => post(app.url, 'batch_sum', body)));
    for (const reply of replies) {
      expectRefusal(reply, 401, 'BAD_SIGNATURE');
      expect(reply.text).toBe(replies[0]!.text);
      expect(reply.headers.get('content-type')).toBe(replies[0]!.headers.get('content-type'));
      expect(reply.headers.get('content-length')).toBe(replies[0]!.headers.get('content-length'));
    }
    // Nothing in the answer names the client.
    expect(replies[0]!.text).not.toContain('client-');
  });
});

// ---- 10. job ownership --------------------------------------------------------------------------

describe('job ownership', () => {
  it("another client's job is 404 JOB_NOT_FOUND on poll_job, cancel_job and watch_job", async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice], [bob])));
    const owner = typedClient(app.url, alice);
    const other = typedClient(app.url, bob);
    const { job_id } = await owner.start_long_task.mutate({ seconds: 20, payload: { secret: 1 } });

    for (const attempt of [
      other.poll_job.mutate({ job_id }),
      other.cancel_job.mutate({ job_id }),
    ]) {
      const error = await rejectionOf(attempt);
      expect(signetReason(error)).toBe('JOB_NOT_FOUND');
      expect((error as { data?: { httpStatus?: number } }).data?.httpStatus).toBe(404);
    }

    // The typed client's subscription.
    const watched = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('watch_job did not fail')), 10_000);
      const subscription = other.watch_job.subscribe(
        { job_id },
        {
          onData: (state) => {
            clearTimeout(timer);
            subscription.unsubscribe();
            reject(new Error(`got ${JSON.stringify(state)}`));
          },
          onError: (error) => {
            clearTimeout(timer);
            resolve(error);
          },
        },
      );
    });
    expect(signetReason(watched)).toBe('JOB_NOT_FOUND');

    // Raw SSE: a serialized-error event with the reason, signed for the asker.
    const request = signed(bob, 'watch_job', { job_id });
    const raw = await rawWatch(app.url, request);
    expect(raw.messages).toEqual([]);
    expect(raw.errors).toHaveLength(1);
    expect(raw.errors[0]!.data.reason).toBe('JOB_NOT_FOUND');
    const envelope = raw.errors[0]!.data.envelope!;
    expect(verify(envelope, bob.secret)).toBe(true);
    expect(envelope).toMatchObject({ nonce: request.nonce, error: { code: 'JOB_NOT_FOUND' } });

    // Someone else's job and no job at all are told apart by nothing.
    const mine = await post(app.url, 'poll_job', signed(bob, 'poll_job', { job_id }));
    const none = await post(
      app.url,
      'poll_job',
      signed(bob, 'poll_job', { job_id: crypto.randomUUID() }),
    );
    expectRefusal(mine, 404, 'JOB_NOT_FOUND', bob);
    expectRefusal(none, 404, 'JOB_NOT_FOUND', bob);
    expect(mine.json?.error?.message).toBe(none.json?.error?.message);
    expect(mine.json?.error?.data.envelope?.error).toEqual(none.json?.error?.data.envelope?.error);

    // The owner's job is untouched by the other client's cancel.
    const state = await owner.poll_job.mutate({ job_id });
    expect(['queued', 'running']).toContain(state.status);
    await expect(owner.cancel_job.mutate({ job_id })).resolves.toMatchObject({
      status: 'cancelled',
    });
  });
});

// ---- errors and logs --------------------------------------------------------------------------

describe('errors and logs', () => {
  it('no refusal carries a stack trace or an internal message, and no log line carries a secret', async () => {
    const { logger, records } = capturingLogger();
    logger.level = 'trace';
    const app = await startTestApp(writeKeyring(keyringOf([alice])), {}, logger);
    const forger: Who = { ...alice, secret: generateSecret() };
    const replayed = signed(alice, 'batch_sum', { numbers: [1] });
    await post(app.url, 'batch_sum', replayed);
    const replies = [
      await post(app.url, 'batch_sum', signed(forger, 'batch_sum', { numbers: [1] })),
      await post(app.url, 'batch_sum', replayed),
      await post(app.url, 'batch_sum', signed(alice, 'batch_sum', { numbers: [] })),
      await post(app.url, 'batch_sum', signed(alice, 'batch_sum', { numbers: [1e308, 1e308] })),
      await post(app.url, 'batch_sum', signed(alice, 'batch_sum', { n: 1 }, { ts_ms: 0 })),
      await post(app.url, 'batch_sum', signed(alice, 'batch_sum', { n: 1 }, { server_id: 'x' })),
      await post(app.url, 'poll_job', signed(alice, 'poll_job', { job_id: 'nope' })),
      await post(app.url, 'no_such_tool', signed(alice, 'no_such_tool', {})),
      await post(app.url, 'batch_sum', '{"v":'),
      await post(app.url, 'batch_sum', 'x'.repeat(2 * 1024 * 1024)),
      await post(app.url, 'batch_sum', replayed, { contentType: 'text/plain' }),
    ];
    for (const reply of replies) {
      expect(reply.status).toBeGreaterThanOrEqual(400);
      expect(reply.status).toBeLessThan(500);
      expect(reply.text).not.toMatch(/stack|\bat \/|node:internal|\.ts:\d|Error:/);
      expect(reply.text).not.toContain(alice.secret);
      expect(reply.text).not.toContain(forger.secret);
    }
    const logged = JSON.stringify(records);
    expect(logged).not.toContain(alice.secret);
    expect(logged).not.toContain(forger.secret);
  });
});

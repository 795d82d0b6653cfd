// The refusals of an Ed25519 client that need a server of their own, or come before its key is
// known: the rate limit (429, signed), the store going away (503, signed), and checks 1-3
// (unsigned, as for any client). e2e.ed25519-envelopes.test.ts has the rest.
import { signetReason } from '@signet/client';
import { describe, expect, it } from 'vitest';
import {
  client,
  expectServerSigned,
  keyringWith,
  serverKey,
  signed,
  signedFor,
} from './testing/ed25519-app.ts';
import {
  cleanUpAfterEachTest,
  expectRefusal,
  post,
  startTestApp,
  writeKeyring,
} from './testing/http.ts';
import { startRedisServer } from './testing/redis-server.ts';

cleanUpAfterEachTest();

const keyringPath = () => writeKeyring(keyringWith(serverKey.privateKey));

describe('Ed25519 refusals (DESIGN 1.5)', () => {
  it('past the rate limit a call is 429 RATE_LIMITED, signed, with Retry-After', async () => {
    const app = await startTestApp(keyringPath(), {
      SIGNET_RATE_LIMIT: '1',
      SIGNET_RATE_BURST: '1',
    });
    const first = signed('batch_sum', { numbers: [1] });
    expect((await post(app.url, 'batch_sum', first)).status).toBe(200);
    const second = signed('batch_sum', { numbers: [2] });
    const reply = await post(app.url, 'batch_sum', second);
    const error = expectRefusal(reply, 429, 'RATE_LIMITED', signedFor(second));
    expectServerSigned(error.data.envelope);
    expect(Number(reply.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  });

  it('checks 1-3 refuse unsigned: version, tool mismatch, body size, media type', async () => {
    const app = await startTestApp(keyringPath(), { SIGNET_MAX_BODY_BYTES: '2048' });
    const version = signed('batch_sum', { numbers: [1] }, { v: 'mcp/9.9' });
    expectRefusal(await post(app.url, 'batch_sum', version), 400, 'UNSUPPORTED_VERSION');
    const mismatch = signed('server_identity', {});
    expectRefusal(await post(app.url, 'batch_sum', mismatch), 400, 'TOOL_MISMATCH');
    const large = signed('batch_sum', { numbers: Array.from({ length: 1000 }, (_, i) => i) });
    expectRefusal(await post(app.url, 'batch_sum', large), 413, 'PAYLOAD_TOO_LARGE');
    const form = await post(app.url, 'batch_sum', JSON.stringify(signed('batch_sum', {})), {
      contentType: 'text/plain',
    });
    expectRefusal(form, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('with Redis stopped a call is 503 STORE_UNAVAILABLE, signed; the server still shuts down', async () => {
    const redis = await startRedisServer();
    try {
      const app = await startTestApp(keyringPath(), { SIGNET_STORE: redis.url });
      const ed = client({ url: app.url });
      await expect(ed.batch_sum.mutate({ numbers: [1] })).resolves.toEqual({ count: 1, total: 1 });
      await redis.kill();
      const request = signed('batch_sum', { numbers: [1] });
      const error = expectRefusal(
        await post(app.url, 'batch_sum', request),
        503,
        'STORE_UNAVAILABLE',
        signedFor(request),
      );
      expectServerSigned(error.data.envelope);
      const refusal = await ed.batch_sum.mutate({ numbers: [2] }).catch((e: unknown) => e);
      expect(signetReason(refusal)).toBe('STORE_UNAVAILABLE');
      // And the server still shuts down (BullMQ's own close would wait for Redis for ever).
      await app.close({ graceMs: 0 });
    } finally {
      await redis.dispose();
    }
  }, 30_000);
});

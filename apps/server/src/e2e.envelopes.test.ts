// End to end over real HTTP: hand-built envelopes against the app as `pnpm serve` starts it, one
// case per check and reason of DESIGN 1.4 / 1.5 (signature, server, freshness, nonce, allowlist,
// args, the HTTP layer, body size and media type, batches, job ownership and idempotent starts).
import { randomUUID } from 'node:crypto';
import { type RequestEnvelope, sign, verify } from '@signet/protocol';
import { generateSecret } from '@signet/server';
import { describe, expect, it } from 'vitest';
import {
  envelope,
  expectAnswer,
  expectRefusal,
  post,
  rawPost,
  secrets,
  signed,
  useE2eApp,
} from './testing/e2e-app.ts';

useE2eApp();

// ---- hand-built envelopes -------------------------------------------------------------------

describe('hand-built envelopes over raw HTTP (DESIGN 1.4 / 1.5)', () => {
  it('a correctly signed call is answered with a signed envelope', async () => {
    const request = signed('batch_sum', { numbers: [1, 2] });
    const data = expectAnswer(await post('/trpc/batch_sum', request), request);
    expect(data).toMatchObject({ status: 'ok', result: { count: 2, total: 3 } });
  });

  it('a forged signature is 401 BAD_SIGNATURE, with nothing signed', async () => {
    const request = sign(envelope('batch_sum', { numbers: [1] }), generateSecret());
    expectRefusal(await post('/trpc/batch_sum', request), 401, 'BAD_SIGNATURE');
  });

  it("a request signed with another client's key is 401 BAD_SIGNATURE", async () => {
    const request = sign(envelope('batch_sum', { numbers: [1] }), secrets.client2);
    expectRefusal(await post('/trpc/batch_sum', request), 401, 'BAD_SIGNATURE');
  });

  it('an unknown client gets exactly the answer a bad signature gets', async () => {
    const unknown = sign(
      envelope('batch_sum', { numbers: [1] }, { client_id: 'client-999' }),
      secrets.k1,
    );
    const forged = sign(envelope('batch_sum', { numbers: [1] }), generateSecret());
    const unknownReply = await post('/trpc/batch_sum', unknown);
    const forgedReply = await post('/trpc/batch_sum', forged);
    expectRefusal(unknownReply, 401, 'BAD_SIGNATURE');
    expect(unknownReply.json).toEqual(forgedReply.json);
  });

  it('a kid naming one key with a signature by the other key is 401', async () => {
    const request = sign(envelope('batch_sum', { numbers: [1] }, { kid: 'k1' }), secrets.k2);
    expectRefusal(await post('/trpc/batch_sum', request), 401, 'BAD_SIGNATURE');
  });

  it('the response is signed with the key that verified the request', async () => {
    const request = sign(envelope('batch_sum', { numbers: [7] }, { kid: undefined }), secrets.k2);
    const data = expectAnswer(await post('/trpc/batch_sum', request), request, secrets.k2);
    expect(verify(data, secrets.k1)).toBe(false);
    expect(data.result).toEqual({ count: 1, total: 7 });
  });

  it('another server_id is 401 WRONG_SERVER, signed', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { server_id: 'mcp-server-002' });
    expectRefusal(await post('/trpc/batch_sum', request), 401, 'WRONG_SERVER', {
      request,
      secret: secrets.k1,
    });
  });

  for (const [label, offset] of [
    ['stale', -301_000],
    ['future', 301_000],
  ] as const) {
    it(`a ${label} ts_ms is 401 STALE_REQUEST with the server's clock`, async () => {
      const request = signed('batch_sum', { numbers: [1] }, { ts_ms: Date.now() + offset });
      const before = Date.now();
      const reply = await post('/trpc/batch_sum', request);
      const after = Date.now();
      const error = expectRefusal(reply, 401, 'STALE_REQUEST', { request, secret: secrets.k1 });
      const serverNow = (error.data.details as { server_ts_ms?: number }).server_ts_ms;
      expect(serverNow).toBeGreaterThanOrEqual(before);
      expect(serverNow).toBeLessThanOrEqual(after);
      expect(error.data.envelope?.error?.details).toEqual(error.data.details);
    });
  }

  it('a replayed request is 409 REPLAYED_NONCE', async () => {
    const request = signed('batch_sum', { numbers: [1, 1] });
    expectAnswer(await post('/trpc/batch_sum', request), request);
    expectRefusal(await post('/trpc/batch_sum', request), 409, 'REPLAYED_NONCE', {
      request,
      secret: secrets.k1,
    });
  });

  it('an envelope naming another tool than the URL is 400 TOOL_MISMATCH', async () => {
    const request = signed('server_identity', {});
    expectRefusal(await post('/trpc/batch_sum', request), 400, 'TOOL_MISMATCH');
  });

  it('an unknown envelope field is 400 BAD_ENVELOPE', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { extra: 'field' });
    expectRefusal(await post('/trpc/batch_sum', request), 400, 'BAD_ENVELOPE');
  });

  it('another protocol version is 400 UNSUPPORTED_VERSION', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { v: 'mcp/0.2' });
    expectRefusal(await post('/trpc/batch_sum', request), 400, 'UNSUPPORTED_VERSION');
  });

  it('invalid args are 400 INVALID_ARGS with the issues, signed', async () => {
    const request = signed('batch_sum', { numbers: ['a'] });
    const error = expectRefusal(await post('/trpc/batch_sum', request), 400, 'INVALID_ARGS', {
      request,
      secret: secrets.k1,
    });
    expect(error.data.details).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: 'numbers.0' })]),
    );
    expect(error.data.envelope?.error?.details).toEqual(error.data.details);
  });

  it('a client limited to some tools is 403 TOOL_NOT_ALLOWED for the others', async () => {
    const as = (tool: string, args: Record<string, unknown>) =>
      sign(
        envelope(tool, args, { client_id: 'client-limited', kid: 'k1' }),
        secrets.limited,
      ) as RequestEnvelope;
    const allowed = as('server_identity', {});
    expectAnswer(await post('/trpc/server_identity', allowed), allowed, secrets.limited);
    const request = as('batch_sum', { numbers: [1] });
    expectRefusal(await post('/trpc/batch_sum', request), 403, 'TOOL_NOT_ALLOWED', {
      request,
      secret: secrets.limited,
    });
  });

  it('an unknown tool is 404 UNKNOWN_TOOL', async () => {
    const request = signed('no_such_tool', {});
    expectRefusal(await post('/trpc/no_such_tool', request), 404, 'UNKNOWN_TOOL');
  });

  it('a malformed percent-encoded tool path is 404 UNKNOWN_TOOL, and the server lives on', async () => {
    // Regression: decodeURIComponent threw inside the request listener and killed the process.
    const request = signed('batch_sum', { numbers: [1] });
    expectRefusal(await post('/trpc/%E0%A4%A', request), 404, 'UNKNOWN_TOOL');
    expectAnswer(await post('/trpc/batch_sum', request), request);
  });

  it("another client's job is 404 JOB_NOT_FOUND, signed for the asker", async () => {
    const start = signed('start_long_task', { seconds: 1, payload: {} });
    const jobId = expectAnswer(await post('/trpc/start_long_task', start), start).result?.job_id;
    expect(typeof jobId).toBe('string');
    const request = sign(
      envelope('poll_job', { job_id: jobId }, { client_id: 'client-002', kid: 'k1' }),
      secrets.client2,
    ) as RequestEnvelope;
    expectRefusal(await post('/trpc/poll_job', request), 404, 'JOB_NOT_FOUND', {
      request,
      secret: secrets.client2,
    });
  });

  // A poll reads its job alongside its nonce claim; the answer still follows the checks' order.
  it('a replayed poll is 409, whatever its args and whoever owns the job', async () => {
    const invalid = signed('poll_job', { job_id: 42 });
    const mine = { request: invalid, secret: secrets.k1 };
    expectRefusal(await post('/trpc/poll_job', invalid), 400, 'INVALID_ARGS', mine);
    expectRefusal(await post('/trpc/poll_job', invalid), 409, 'REPLAYED_NONCE', mine);

    const start = signed('start_long_task', { seconds: 1, payload: { n: 1 } });
    const jobId = expectAnswer(await post('/trpc/start_long_task', start), start).result?.job_id;
    const poll = signed('poll_job', { job_id: jobId });
    expect(expectAnswer(await post('/trpc/poll_job', poll), poll).status).not.toBe('error');
    expectRefusal(await post('/trpc/poll_job', poll), 409, 'REPLAYED_NONCE', {
      request: poll,
      secret: secrets.k1,
    });

    const foreign = sign(
      envelope('poll_job', { job_id: jobId }, { client_id: 'client-002', kid: 'k1' }),
      secrets.client2,
    ) as RequestEnvelope;
    const theirs = { request: foreign, secret: secrets.client2 };
    expectRefusal(await post('/trpc/poll_job', foreign), 404, 'JOB_NOT_FOUND', theirs);
    expectRefusal(await post('/trpc/poll_job', foreign), 409, 'REPLAYED_NONCE', theirs);
  });

  it('GET on a mutation is 405 METHOD_NOT_ALLOWED', async () => {
    const input = encodeURIComponent(JSON.stringify(signed('batch_sum', { numbers: [1] })));
    expectRefusal(
      await post(`/trpc/batch_sum?input=${input}`, undefined, { method: 'GET' }),
      405,
      'METHOD_NOT_ALLOWED',
    );
  });

  it('a body that is not application/json is 415, and its nonce is not spent', async () => {
    const request = signed('batch_sum', { numbers: [2] });
    expectRefusal(
      await post('/trpc/batch_sum', request, { contentType: 'text/plain' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectAnswer(await post('/trpc/batch_sum', request), request);
  });

  it('a body that is not JSON is 400 PARSE_ERROR', async () => {
    expectRefusal(await post('/trpc/batch_sum', '{"v":"mcp/0.1",'), 400, 'PARSE_ERROR');
  });

  it('a body over 1 MiB is 413 PAYLOAD_TOO_LARGE, declared or streamed', async () => {
    // Refused before it is parsed, so the padding need not be signed.
    const text = JSON.stringify({
      ...signed('batch_sum', { numbers: [1] }),
      pad: 'x'.repeat(1024 * 1024),
    });
    const body = Buffer.from(text);
    const declared = await rawPost('/trpc/batch_sum', [body], {
      'content-type': 'application/json',
      'content-length': body.length,
    });
    expectRefusal(declared, 413, 'PAYLOAD_TOO_LARGE');
    // No content-length: chunked, in pieces, so the limit must be enforced while reading.
    const pieces: Buffer[] = [];
    for (let at = 0; at < body.length; at += 64 * 1024) pieces.push(body.subarray(at, at + 65536));
    const streamed = await rawPost('/trpc/batch_sum', pieces, {
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
    });
    expectRefusal(streamed, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('batched calls are refused with 400', async () => {
    const first = signed('batch_sum', { numbers: [1] });
    const second = signed('server_identity', {});
    const both = await post('/trpc/batch_sum,server_identity?batch=1', { 0: first, 1: second });
    expect(both.status).toBe(400);
    expect(both.json?.result).toBeUndefined();
    expect(both.json?.error?.data.envelope).toBeUndefined();
    const one = await post('/trpc/batch_sum?batch=1', { 0: signed('batch_sum', { numbers: [1] }) });
    expect(one.status).toBe(400);
    expect(one.json?.result).toBeUndefined();
    // The refused batch spent nothing: the same signed call still goes through on its own.
    expectAnswer(await post('/trpc/batch_sum', first), first);
  });

  it('a job start retried with the same request_id returns the same job; other args are 409', async () => {
    const requestId = randomUUID();
    const args = { seconds: 1, payload: { a: 1 } };
    const first = signed('start_long_task', args, { request_id: requestId });
    const started = expectAnswer(await post('/trpc/start_long_task', first), first);
    expect(started.status).toBe('accepted');
    const jobId = started.result?.job_id;
    expect(jobId).toEqual(expect.any(String));

    const retry = signed('start_long_task', args, { request_id: requestId });
    expect(retry.nonce).not.toBe(first.nonce);
    const again = expectAnswer(await post('/trpc/start_long_task', retry), retry);
    expect(again.result).toEqual({ job_id: jobId });

    const other = signed(
      'start_long_task',
      { seconds: 1, payload: { a: 2 } },
      { request_id: requestId },
    );
    expectRefusal(await post('/trpc/start_long_task', other), 409, 'REQUEST_ID_REUSED', {
      request: other,
      secret: secrets.k1,
    });
  });
});

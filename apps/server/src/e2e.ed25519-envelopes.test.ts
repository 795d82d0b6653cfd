// Ed25519 envelopes over raw HTTP (DESIGN 1.4 / 1.5): every refusal the example tools can give
// an Ed25519 client gets its status and reason, signed with the server key where DESIGN says.
import { randomUUID } from 'node:crypto';
import { ed25519PrivateKey, type RequestEnvelope, sign } from '@signet/protocol';
import { requestEnvelope } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import {
  byServer,
  clientKey,
  edApp,
  expectServerSigned,
  hmacSecret,
  limitedKey,
  signed,
  signedFor,
  strangerKey,
  useEd25519App,
} from './testing/ed25519-app.ts';
import { expectOk, expectRefusal, post, SERVER_ID } from './testing/http.ts';

useEd25519App();

describe('Ed25519 envelopes over raw HTTP (DESIGN 1.4 / 1.5)', () => {
  it('a signed call is answered with an envelope signed by the server key, kid s1', async () => {
    const request = signed('batch_sum', { numbers: [1, 2] });
    const data = expectOk(await post(edApp.url, 'batch_sum', request), request, byServer);
    expectServerSigned(data);
    expect(data.result).toEqual({ count: 2, total: 3 });
  });

  it('without kid, the client key is still found', async () => {
    const request = signed('batch_sum', { numbers: [4] }, { kid: undefined });
    expectServerSigned(expectOk(await post(edApp.url, 'batch_sum', request), request, byServer));
  });

  it('a wrong key, or an unknown client, is 401 BAD_SIGNATURE, with nothing signed', async () => {
    const stranger = ed25519PrivateKey(strangerKey.privateKey);
    const wrong = signed('batch_sum', { numbers: [1] }, {}, stranger);
    const wrongReply = await post(edApp.url, 'batch_sum', wrong);
    expectRefusal(wrongReply, 401, 'BAD_SIGNATURE');
    const unknown = signed('batch_sum', { numbers: [1] }, { client_id: 'nobody' });
    const unknownReply = await post(edApp.url, 'batch_sum', unknown);
    expectRefusal(unknownReply, 401, 'BAD_SIGNATURE');
    expect(unknownReply.json).toEqual(wrongReply.json);
    // An HMAC signature for an Ed25519 client, or a kid naming no key, verifies under nothing.
    const hmac = sign(signed('batch_sum', { numbers: [1] }), clientKey.privateKey);
    expectRefusal(await post(edApp.url, 'batch_sum', hmac), 401, 'BAD_SIGNATURE');
    const otherKid = signed('batch_sum', { numbers: [1] }, { kid: 'e2' });
    expectRefusal(await post(edApp.url, 'batch_sum', otherKid), 401, 'BAD_SIGNATURE');
  });

  it('another server_id is 401 WRONG_SERVER, signed', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { server_id: 'mcp-server-002' });
    const error = expectRefusal(
      await post(edApp.url, 'batch_sum', request),
      401,
      'WRONG_SERVER',
      signedFor(request),
    );
    expectServerSigned(error.data.envelope);
  });

  it('a stale ts_ms is 401 STALE_REQUEST, signed', async () => {
    const request = signed('batch_sum', { numbers: [1] }, { ts_ms: Date.now() - 301_000 });
    const error = expectRefusal(
      await post(edApp.url, 'batch_sum', request),
      401,
      'STALE_REQUEST',
      signedFor(request),
    );
    expectServerSigned(error.data.envelope);
  });

  it('a replayed request is 409 REPLAYED_NONCE, signed', async () => {
    const request = signed('batch_sum', { numbers: [1, 1] });
    expectOk(await post(edApp.url, 'batch_sum', request), request, byServer);
    const error = expectRefusal(
      await post(edApp.url, 'batch_sum', request),
      409,
      'REPLAYED_NONCE',
      signedFor(request),
    );
    expectServerSigned(error.data.envelope);
  });

  it('invalid args are 400 INVALID_ARGS, a forbidden tool 403, both signed', async () => {
    const invalid = signed('batch_sum', { numbers: [] });
    const error = expectRefusal(
      await post(edApp.url, 'batch_sum', invalid),
      400,
      'INVALID_ARGS',
      signedFor(invalid),
    );
    expectServerSigned(error.data.envelope);
    const limited = sign(
      requestEnvelope(
        { serverId: SERVER_ID, clientId: 'ed-limited', kid: 'e1', secret: '' },
        'batch_sum',
        {
          numbers: [1],
        },
      ),
      ed25519PrivateKey(limitedKey.privateKey),
    ) as RequestEnvelope;
    expectServerSigned(
      expectRefusal(
        await post(edApp.url, 'batch_sum', limited),
        403,
        'TOOL_NOT_ALLOWED',
        signedFor(limited),
      ).data.envelope,
    );
  });

  it('an unknown job is 404 JOB_NOT_FOUND, a reused request_id 409, both signed', async () => {
    const poll = signed('poll_job', { job_id: randomUUID() });
    expectServerSigned(
      expectRefusal(await post(edApp.url, 'poll_job', poll), 404, 'JOB_NOT_FOUND', signedFor(poll))
        .data.envelope,
    );
    const requestId = randomUUID();
    const first = signed(
      'start_long_task',
      { seconds: 1, payload: { a: 1 } },
      { request_id: requestId },
    );
    expectOk(await post(edApp.url, 'start_long_task', first), first, byServer);
    const other = signed(
      'start_long_task',
      { seconds: 1, payload: { a: 2 } },
      { request_id: requestId },
    );
    expectServerSigned(
      expectRefusal(
        await post(edApp.url, 'start_long_task', other),
        409,
        'REQUEST_ID_REUSED',
        signedFor(other),
      ).data.envelope,
    );
  });

  it('an unknown tool is 404 UNKNOWN_TOOL', async () => {
    const request = signed('no_such_tool', {});
    expectRefusal(await post(edApp.url, 'no_such_tool', request), 404, 'UNKNOWN_TOOL');
  });

  it("an HMAC client's answers are unchanged: HMAC-signed, no kid", async () => {
    const request = sign(
      requestEnvelope(
        { serverId: SERVER_ID, clientId: 'hmac-client', kid: 'k1', secret: hmacSecret },
        'batch_sum',
        {
          numbers: [1],
        },
      ),
      hmacSecret,
    ) as RequestEnvelope;
    const data = expectOk(await post(edApp.url, 'batch_sum', request), request, {
      secret: hmacSecret,
    });
    expect(data.kid).toBeUndefined();
    expect(data.signature).toMatch(/^[0-9a-f]{64}$/);
  });
});

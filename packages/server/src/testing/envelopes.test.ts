// The envelope kit's own behaviour, where the suites that use it would not show a slip: fields
// overridden or deleted, the kid left out, and where a tool's URL points.
import { requestEnvelopeSchema, verify } from '@signet/protocol';
import { describe, expect, it } from 'vitest';
import { requestEnvelope, signedRequest, toolUrl, watchUrl } from './envelopes.ts';

const who = { serverId: 'server-1', clientId: 'client-1', kid: 'k1', secret: 'x'.repeat(32) };

describe('the envelope kit', () => {
  it('builds fresh, valid envelopes, signed with the signer’s key', () => {
    const request = signedRequest(who, 'batch_sum', { numbers: [1] });
    expect(requestEnvelopeSchema.parse(request)).toEqual(request);
    expect(request).toMatchObject({ client_id: 'client-1', server_id: 'server-1', kid: 'k1' });
    expect(verify(request, who.secret)).toBe(true);
    expect(signedRequest(who, 'batch_sum', {}).nonce).not.toBe(request.nonce);
  });

  it('sets what the overrides set, deletes what they set to undefined, and omits a missing kid', () => {
    const draft = requestEnvelope(who, 't', {}, { ts_ms: 0, kid: undefined, extra: 1 });
    expect(draft).toMatchObject({ ts_ms: 0, extra: 1 });
    expect(Object.hasOwn(draft, 'kid')).toBe(false);
    const { kid: _none, ...noKid } = who;
    expect(Object.hasOwn(requestEnvelope(noKid, 't', {}), 'kid')).toBe(false);
  });

  it('points at /trpc/<tool>, or at a path of its own', () => {
    expect(toolUrl('http://h:1/', 'batch_sum')).toBe('http://h:1/trpc/batch_sum');
    expect(toolUrl('http://h:1', '/healthz')).toBe('http://h:1/healthz');
    expect(watchUrl('http://h:1', { a: '&' })).toBe(
      'http://h:1/trpc/watch_job?input=%7B%22a%22%3A%22%26%22%7D',
    );
  });
});

import {
  canonicalize,
  hmacHex,
  MAX_DEPTH,
  newNonce,
  PROTOCOL_VERSION,
  type RequestEnvelope,
} from '@signet/protocol';
import { describe, expect, it } from 'vitest';
import { authenticate, protoKeyPath } from './envelope.ts';
import { SignetError } from './errors.ts';
import { generateSecret, Keyring } from './keyring.ts';
import type { SignetServices } from './services.ts';
import { decoyTimingRatio } from './testing/decoy-timing.ts';
import { signedRequest } from './testing/envelopes.ts';

const secret = generateSecret();
const keyring = new Keyring({
  server_id: 'mcp-server-001',
  clients: [{ client_id: 'client-001', keys: [{ kid: 'k1', secret }] }],
});
const services = {
  keyring: () => keyring,
  now: Date.now,
  windowMs: 300_000,
} as unknown as SignetServices;

function request(clientId: string, key: string, args: Record<string, unknown>): RequestEnvelope {
  const who = { serverId: 'mcp-server-001', clientId, kid: 'k1', secret: key };
  return signedRequest(who, 'batch_sum', args);
}

function refusalOf(raw: unknown): SignetError {
  try {
    authenticate(raw, 'batch_sum', services);
  } catch (error) {
    if (error instanceof SignetError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('authenticate (DESIGN 1.4 checks 1-3)', () => {
  const args = { numbers: Array.from({ length: 50 }, (_, i) => i * 1.5) };

  it('counts the depth limit from the envelope, not from args', () => {
    // args at depth 1, then `levels` nested arrays: the deepest container is at depth `levels`.
    const nested = (levels: number) => {
      let value: unknown = 1;
      for (let i = 1; i < levels; i++) value = [value];
      return { deep: value };
    };
    const atLimit = request('client-001', secret, nested(MAX_DEPTH - 1));
    expect(authenticate(atLimit, 'batch_sum', services).envelope.args).toEqual(atLimit.args);
    // (Not signable: check 1 comes first anyway.)
    const tooDeep = { ...atLimit, args: { deep: [nested(MAX_DEPTH - 1).deep] } };
    expect(refusalOf(tooDeep).reason).toBe('PARSE_ERROR');
    // The same, with an envelope that is wrong besides: still check 1 first.
    expect(refusalOf({ ...tooDeep, extra: true }).reason).toBe('PARSE_ERROR');
  });

  it('refuses what cannot be canonicalized at check 1, wherever it is', () => {
    const good = request('client-001', secret, { a: 1 });
    for (const raw of [
      { ...good, args: { a: 'x\uD800' } },
      { ...good, args: { 'x\uDC00': 1 } },
      { ...good, client_id: 'client\uD800' },
      { ...good, request_id: '\uDBFF' },
      { ...good, args: { a: 'x\uD800' }, extra: 1 },
    ]) {
      expect(refusalOf(raw).reason).toBe('PARSE_ERROR');
    }
  });
  // Same length of client_id, same shape: only who the client is differs.
  const unknownClient = request('client-999', generateSecret(), args);
  const badSignature = request('client-001', generateSecret(), args);

  it('an unknown client and a bad signature get the same refusal', () => {
    const a = refusalOf(unknownClient);
    const b = refusalOf(badSignature);
    expect(a.reason).toBe('BAD_SIGNATURE');
    expect([b.reason, b.message, b.code, b.details]).toEqual([
      a.reason,
      a.message,
      a.code,
      a.details,
    ]);
    expect(a.envelope).toBeUndefined();
    expect(b.envelope).toBeUndefined();
  });

  it('takes as long for an unknown client as for a bad signature (decoy key, no timing oracle)', () => {
    const ratio = decoyTimingRatio({
      services,
      unknownClient,
      badSignature,
      warmup: 2_000,
      samples: 2_000,
      label: 'authenticate',
    });
    expect(ratio).toBeGreaterThan(0.7);
    expect(ratio).toBeLessThan(1.4);
  });

  it('verifies the value the body parsed to, own __proto__ keys included, and hands that on', () => {
    const unsigned =
      `{"v":"${PROTOCOL_VERSION}","request_id":"r-1","ts_ms":${Date.now()},` +
      `"client_id":"client-001","server_id":"mcp-server-001","tool":"batch_sum",` +
      `"args":{"numbers":[1],"__proto__":{"polluted":true}},"nonce":"${newNonce()}","kid":"k1"}`;
    const parsed = JSON.parse(unsigned) as Record<string, unknown>;
    const raw: Record<string, unknown> = {
      ...parsed,
      signature: hmacHex(secret, canonicalize(parsed)),
    };
    const call = authenticate(raw, 'batch_sum', services);
    // The args a tool will be checked against are the signed ones, not a copy without the key.
    expect(call.envelope.args).toBe(raw.args);
    expect(Object.hasOwn(call.envelope.args, '__proto__')).toBe(true);
    expect(protoKeyPath(call.envelope.args)).toBe('__proto__');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // Signed without the key and sent with it: the signature no longer verifies.
    const { __proto__: _dropped, ...withoutKey } = parsed.args as Record<string, unknown>;
    const honest = { ...parsed, args: withoutKey };
    const tampered = { ...raw, signature: hmacHex(secret, canonicalize(honest)) };
    expect(refusalOf(tampered).reason).toBe('BAD_SIGNATURE');
  });
});

describe('protoKeyPath', () => {
  const parse = (text: string) => JSON.parse(text) as unknown;

  it('finds an own __proto__ key at any depth, in objects and arrays', () => {
    expect(protoKeyPath(parse('{"__proto__":{}}'))).toBe('__proto__');
    expect(protoKeyPath(parse('{"a":{"b":[1,{"__proto__":null}]}}'))).toBe('a.b.1.__proto__');
    expect(protoKeyPath(parse('[{"x":{"__proto__":1}}]'))).toBe('0.x.__proto__');
    expect(protoKeyPath(parse('{"\\u005f_proto__":1}'))).toBe('__proto__');
  });

  it('lets everything else through, constructor and prototype included', () => {
    for (const text of [
      '{}',
      '{"constructor":{"prototype":{"x":1}},"prototype":1,"__proto":1,"proto__":1}',
      '{"numbers":[1,2,3],"nested":[[[]],{"a":null}]}',
      '"__proto__"',
      '["__proto__"]',
      'null',
    ]) {
      expect(protoKeyPath(parse(text))).toBeUndefined();
    }
    // An object whose prototype was set (not an own key) is not what JSON.parse makes; an
    // inherited __proto__ accessor is not an own key either.
    expect(protoKeyPath({ a: 1 })).toBeUndefined();
  });

  it('walks deep values without recursion', () => {
    let deep: unknown = { __proto__null: 1 };
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(protoKeyPath(deep)).toBeUndefined();
  });
});

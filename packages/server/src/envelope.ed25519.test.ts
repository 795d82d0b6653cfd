// authenticate and respond for Ed25519 clients (DESIGN 1.3 / 1.4): the client's public key
// verifies, the server key answers and is named in `kid`, and an unknown client costs what a
// bad signature costs (a decoy Ed25519 key).
import {
  ed25519PrivateKey,
  ed25519PublicKey,
  generateEd25519KeyPair,
  type RequestEnvelope,
  verify,
} from '@signet/protocol';
import { describe, expect, it } from 'vitest';
import { authenticate } from './envelope.ts';
import { SignetError } from './errors.ts';
import { generateSecret, Keyring } from './keyring.ts';
import type { SignetServices } from './services.ts';
import { decoyTimingRatio } from './testing/decoy-timing.ts';
import { signedRequest } from './testing/envelopes.ts';

const client = generateEd25519KeyPair();
const server = generateEd25519KeyPair();
const hmacSecret = generateSecret();
const keyring = Keyring.parse({
  server_id: 'mcp-server-001',
  clients: [
    {
      client_id: 'ed',
      keys: [
        { kid: 'e0', alg: 'ed25519', public_key: generateEd25519KeyPair().publicKey },
        { kid: 'e1', alg: 'ed25519', public_key: client.publicKey },
      ],
    },
    { client_id: 'hmac', keys: [{ kid: 'k1', secret: hmacSecret }] },
  ],
  server_keys: [{ kid: 's1', alg: 'ed25519', private_key: server.privateKey }],
});
const services = {
  keyring: () => keyring,
  now: Date.now,
  windowMs: 300_000,
} as unknown as SignetServices;

const clientPrivate = ed25519PrivateKey(client.privateKey);
function request(over: Record<string, unknown> = {}, key = clientPrivate): RequestEnvelope {
  const who = { serverId: 'mcp-server-001', clientId: 'ed', kid: 'e1', secret: key };
  return signedRequest(who, 'batch_sum', { numbers: [1, 2] }, over);
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

describe('authenticate with an Ed25519 client key', () => {
  it('verifies with the named key, or with any of the client keys without kid', () => {
    for (const raw of [request(), request({ kid: undefined })]) {
      const call = authenticate(raw, 'batch_sum', services);
      expect(call.key.kid).toBe('e1');
      expect(call.key.alg).toBe('ed25519');
    }
  });

  it('answers with the server key, named in kid', () => {
    const call = authenticate(request(), 'batch_sum', services);
    const signed = call.respond({ status: 'ok', ok: true, result: { n: 1 }, error: null });
    expect(signed.envelope.kid).toBe('s1');
    expect(signed.signature).toMatch(/^[0-9a-f]{128}$/);
    expect(verify(JSON.parse(signed.json), ed25519PublicKey(server.publicKey))).toBe(true);
    expect(verify(JSON.parse(signed.json), ed25519PublicKey(client.publicKey))).toBe(false);
  });

  it('refuses another key, another kid, an HMAC signature and an unknown client alike', () => {
    const stranger = ed25519PrivateKey(generateEd25519KeyPair().privateKey);
    const refusals = [
      request({}, stranger),
      request({ kid: 'e0' }),
      request({ kid: 'e9' }),
      signedRequest(
        { serverId: 'mcp-server-001', clientId: 'ed', kid: 'e1', secret: hmacSecret },
        'batch_sum',
        { numbers: [1] },
      ),
      request({ client_id: 'nobody' }),
      // An Ed25519 signature for an HMAC client.
      signedRequest(
        { serverId: 'mcp-server-001', clientId: 'hmac', kid: 'k1', secret: clientPrivate },
        'batch_sum',
        { numbers: [1] },
      ),
    ].map(refusalOf);
    for (const refusal of refusals) {
      expect(refusal.reason).toBe('BAD_SIGNATURE');
      expect(refusal.message).toBe(refusals[0]!.message);
    }
  });

  it('takes as long for an unknown client as for a bad Ed25519 signature (decoy key)', () => {
    const stranger = ed25519PrivateKey(generateEd25519KeyPair().privateKey);
    const unknownClient = request({ client_id: 'nobody' });
    const badSignature = request({}, stranger);
    const ratio = decoyTimingRatio({
      services,
      unknownClient,
      badSignature,
      warmup: 300,
      samples: 600,
      label: 'authenticate (Ed25519)',
    });
    expect(ratio).toBeGreaterThan(0.7);
    expect(ratio).toBeLessThan(1.4);
  });
});

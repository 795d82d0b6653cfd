// The app with an Ed25519 client, a limited one and an HMAC one, keyed by server key s1; and
// what the Ed25519 end-to-end tests sign and check with (e2e.ed25519*.test.ts).
import { createSignetClient } from '@signet/client';
import {
  ed25519PrivateKey,
  ed25519PublicKey,
  generateEd25519KeyPair,
  type KeyringFile,
  type RequestEnvelope,
  type ResponseEnvelope,
  sign,
  verify,
} from '@signet/protocol';
import { generateSecret } from '@signet/server';
import { requestEnvelope } from '@signet/server/testing';
import { afterAll, beforeAll, expect } from 'vitest';
import type { AppServer } from '../app.ts';
import { apps, type Router, SERVER_ID, startTestApp, writeKeyring } from './http.ts';

export const serverKey = generateEd25519KeyPair();
export const otherServerKey = generateEd25519KeyPair();
export const clientKey = generateEd25519KeyPair();
export const limitedKey = generateEd25519KeyPair();
export const strangerKey = generateEd25519KeyPair();
export const hmacSecret = generateSecret();

export const ED = { clientId: 'ed-client', kid: 'e1' };
export const serverPublic = ed25519PublicKey(serverKey.publicKey);
export const clientPrivate = ed25519PrivateKey(clientKey.privateKey);

export function keyringWith(serverPrivateKey: string): KeyringFile {
  return {
    server_id: SERVER_ID,
    clients: [
      {
        client_id: ED.clientId,
        keys: [{ kid: ED.kid, alg: 'ed25519', public_key: clientKey.publicKey }],
      },
      {
        client_id: 'ed-limited',
        tools: ['server_identity'],
        keys: [{ kid: 'e1', alg: 'ed25519', public_key: limitedKey.publicKey }],
      },
      { client_id: 'hmac-client', keys: [{ kid: 'k1', secret: hmacSecret }] },
    ],
    server_keys: [{ kid: 's1', alg: 'ed25519', private_key: serverPrivateKey }],
  };
}

let server: AppServer | undefined;
let keyringPath = '';

/** The app with the Ed25519 keyring, for the whole test file that calls this. */
export function useEd25519App(): void {
  beforeAll(async () => {
    keyringPath = writeKeyring(keyringWith(serverKey.privateKey));
    server = await startTestApp(keyringPath);
    apps.splice(apps.indexOf(server), 1); // (kept for the whole file)
  });
  afterAll(() => server?.close({ graceMs: 0 }));
}

/** Where the app of `useEd25519App` runs, and its keyring file. */
export const edApp = {
  get url(): string {
    return server!.url;
  },
  get keyringPath(): string {
    return keyringPath;
  },
};

export function client(
  opts: {
    url?: string;
    clientId?: string;
    privateKey?: string;
    serverKeys?: Array<{ kid: string; publicKey: string }>;
    fetch?: typeof fetch;
    now?: () => number;
  } = {},
) {
  return createSignetClient<Router>({
    url: opts.url ?? edApp.url,
    serverId: SERVER_ID,
    clientId: opts.clientId ?? ED.clientId,
    key: { kid: ED.kid, alg: 'ed25519', privateKey: opts.privateKey ?? clientKey.privateKey },
    serverKeys: opts.serverKeys ?? [{ kid: 's1', publicKey: serverKey.publicKey }],
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
}

/** A request envelope from the Ed25519 client, signed with its private key. */
export function signed(
  tool: string,
  args: Record<string, unknown>,
  over: Record<string, unknown> = {},
  by = clientPrivate,
): RequestEnvelope {
  const draft = requestEnvelope(
    { serverId: SERVER_ID, clientId: ED.clientId, kid: ED.kid, secret: by },
    tool,
    args,
    over,
  );
  return sign(draft, by) as RequestEnvelope;
}

export const byServer = { secret: serverPublic };
export const signedFor = (request: RequestEnvelope) => ({
  request,
  secret: serverPublic,
  serverId: SERVER_ID,
});

/** Asserts an answer signed by server key s1, naming it in `kid`. */
export function expectServerSigned(envelope: ResponseEnvelope | undefined) {
  expect(envelope?.kid).toBe('s1');
  expect(envelope?.signature).toMatch(/^[0-9a-f]{128}$/);
  expect(verify(envelope!, serverPublic)).toBe(true);
}

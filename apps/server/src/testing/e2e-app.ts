// The app the e2e.*.test.ts suites share, started as `pnpm serve` starts it (memory store), with
// three clients (client-001 with keys k1 and k2, client-002, client-limited to server_identity),
// and their helpers: typed clients, and the envelope kit of @signet/server/testing bound to this
// app and to client-001's key k1 (hand-built envelopes, raw POSTs, what a signed answer or refusal
// must look like, DESIGN 1.4 / 1.5).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient } from '@signet/client';
import type { RequestEnvelope } from '@signet/protocol';
import { generateSecret, type KeyringFile } from '@signet/server';
import {
  type EnvelopeReply,
  type EnvelopeSigner,
  expectAnswer as expectSignedAnswer,
  expectRefusal as expectSignedRefusal,
  type PostInit,
  postChunks,
  postEnvelope,
  requestEnvelope,
  signedRequest,
} from '@signet/server/testing';
import pino from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { type AppServer, startApp } from '../app.ts';
import { FRONT, frontConfig } from './front.ts';
import { type Router, SERVER_ID } from './http.ts';

export { rejectionOf, SERVER_ID } from './http.ts';

export const secrets = {
  k1: generateSecret(),
  k2: generateSecret(),
  client2: generateSecret(),
  limited: generateSecret(),
};
const keyring: KeyringFile = {
  server_id: SERVER_ID,
  clients: [
    {
      client_id: 'client-001',
      tools: ['*'],
      keys: [
        { kid: 'k1', secret: secrets.k1 },
        { kid: 'k2', secret: secrets.k2 },
      ],
    },
    { client_id: 'client-002', keys: [{ kid: 'k1', secret: secrets.client2 }] },
    {
      client_id: 'client-limited',
      tools: ['server_identity'],
      keys: [{ kid: 'k1', secret: secrets.limited }],
    },
  ],
};

/** client-001 signing with k1: whom `envelope` and `signed` speak for. */
const k1: EnvelopeSigner = {
  serverId: SERVER_ID,
  clientId: 'client-001',
  kid: 'k1',
  secret: secrets.k1,
};

let server: AppServer;
let dir: string;

/** Starts the app before the file's tests and stops it after them. */
export function useE2eApp(): void {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signet-e2e-'));
    const keyringPath = join(dir, 'keyring.json');
    writeFileSync(keyringPath, JSON.stringify(keyring));
    server = await startApp(
      frontConfig({ SIGNET_STORE: 'memory:', SIGNET_PORT: '0', SIGNET_KEYRING: keyringPath }),
      pino({ level: 'silent' }),
    );
    expect(server.httpFront).toBe(FRONT);
  });

  afterAll(async () => {
    await server?.close({ graceMs: 0 });
    rmSync(dir, { recursive: true, force: true });
  });
}

/** The app's base URL (once useE2eApp's beforeAll has run). */
export function appUrl(): string {
  return server.url;
}

export function typedClient(opts: {
  url?: string;
  clientId?: string;
  kid?: string;
  secret?: string;
  now?: () => number;
}) {
  return createSignetClient<Router>({
    url: opts.url ?? server.url,
    serverId: SERVER_ID,
    clientId: opts.clientId ?? 'client-001',
    key: { kid: opts.kid ?? 'k1', secret: opts.secret ?? secrets.k1 },
    ...(opts.now ? { now: opts.now } : {}),
  });
}

/** A fresh, unsigned request envelope from client-001 (key k1); `over` sets or deletes fields. */
export function envelope(
  tool: string,
  args: Record<string, unknown>,
  over: Record<string, unknown> = {},
) {
  return requestEnvelope(k1, tool, args, over);
}

/** The same, signed with k1. */
export function signed(
  tool: string,
  args: Record<string, unknown>,
  over: Record<string, unknown> = {},
): RequestEnvelope {
  return signedRequest(k1, tool, args, over);
}

/** POSTs `body` to a path of the app (`/trpc/<tool>`, or any other). */
export function post(path: string, body: unknown, init?: PostInit): Promise<EnvelopeReply> {
  return postEnvelope(server.url, path, body, init);
}

/** A successful call: HTTP 200 and a response envelope signed with `secret` for `request`. */
export function expectAnswer(reply: EnvelopeReply, request: RequestEnvelope, secret = secrets.k1) {
  return expectSignedAnswer(reply, request, { secret });
}

/**
 * A refusal with `status` and `reason` (DESIGN 1.5). With `signedFor`, a signed error envelope
 * answering that request, from this server, must come with it (checks 4-9); without, there must
 * be none (checks 1-3 and the HTTP layer). Never a stack trace.
 */
export function expectRefusal(
  reply: EnvelopeReply,
  status: number,
  reason: string,
  signedFor?: { request: RequestEnvelope; secret: string },
) {
  return expectSignedRefusal(
    reply,
    status,
    reason,
    signedFor && { ...signedFor, serverId: SERVER_ID },
  );
}

/** Sends raw bytes with node:http, for what fetch will not do (chunked oversize bodies). */
export function rawPost(
  path: string,
  chunks: Buffer[],
  headers: Record<string, string | number>,
): Promise<EnvelopeReply> {
  return postChunks(server.url, path, chunks, headers);
}

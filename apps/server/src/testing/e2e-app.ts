// The app the e2e.*.test.ts suites share, started as `pnpm serve` starts it (memory store), with
// three clients (client-001 with keys k1 and k2, client-002, client-limited to server_identity),
// and their helpers: typed clients, hand-built envelopes signed with k1, raw POSTs, and what a
// signed answer or refusal must look like (DESIGN 1.4 / 1.5).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient } from '@signet/client';
import { newNonce, PROTOCOL_VERSION, type RequestEnvelope, sign, verify } from '@signet/protocol';
import { generateSecret, type KeyringFile } from '@signet/server';
import pino from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { type AppServer, startApp } from '../app.ts';
import { FRONT, frontConfig } from './front.ts';
import { type HttpReply, type Router, SERVER_ID } from './http.ts';

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

type Envelope = Omit<RequestEnvelope, 'signature'> & Record<string, unknown>;

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

/** A fresh, unsigned request envelope from client-001 (key k1); `over` replaces fields. */
export function envelope(
  tool: string,
  args: Record<string, unknown>,
  over: Partial<Envelope> = {},
) {
  const base: Envelope = {
    v: PROTOCOL_VERSION,
    request_id: randomUUID(),
    ts_ms: Date.now(),
    client_id: 'client-001',
    server_id: SERVER_ID,
    tool,
    args,
    nonce: newNonce(),
    kid: 'k1',
  };
  return { ...base, ...over };
}

export function signed(tool: string, args: Record<string, unknown>, over: Partial<Envelope> = {}) {
  return sign(envelope(tool, args, over), secrets.k1) as RequestEnvelope;
}

export async function post(
  path: string,
  body: unknown,
  init: { contentType?: string; method?: string } = {},
): Promise<HttpReply> {
  const method = init.method ?? 'POST';
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'content-type': init.contentType ?? 'application/json' },
    ...(method === 'GET' ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

/** A successful call: HTTP 200 and a response envelope signed with `secret` for `request`. */
export function expectAnswer(reply: HttpReply, request: RequestEnvelope, secret = secrets.k1) {
  expect(reply.status, reply.text).toBe(200);
  const data = reply.body.result?.data;
  if (!data) throw new Error(`no envelope in ${reply.text}`);
  expect(verify(data, secret)).toBe(true);
  expect(data).toMatchObject({
    v: PROTOCOL_VERSION,
    request_id: request.request_id,
    nonce: request.nonce,
    server_id: SERVER_ID,
    ok: true,
    error: null,
  });
  return data;
}

/**
 * A refusal with `status` and `reason` (DESIGN 1.5). With `signedFor`, a signed error envelope
 * answering that request must come with it (checks 4-9); without, there must be none (checks 1-3
 * and the HTTP layer). Never a stack trace.
 */
export function expectRefusal(
  reply: HttpReply,
  status: number,
  reason: string,
  signedFor?: { request: RequestEnvelope; secret: string },
) {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.text).not.toContain('stack');
  expect(reply.text).not.toContain('at /');
  expect(reply.body.result).toBeUndefined();
  const error = reply.body.error;
  if (!error) throw new Error(`no error in ${reply.text}`);
  expect(error.data.reason).toBe(reason);
  expect(error.data.httpStatus).toBe(status);
  const signedEnvelope = error.data.envelope;
  if (!signedFor) {
    expect(signedEnvelope).toBeUndefined();
    return error;
  }
  if (!signedEnvelope) throw new Error(`no signed envelope in ${reply.text}`);
  expect(verify(signedEnvelope, signedFor.secret)).toBe(true);
  expect(signedEnvelope).toMatchObject({
    v: PROTOCOL_VERSION,
    ok: false,
    status: 'error',
    result: null,
    server_id: SERVER_ID,
    request_id: signedFor.request.request_id,
    nonce: signedFor.request.nonce,
  });
  expect(signedEnvelope.error?.code).toBe(reason);
  return error;
}

/** Sends raw bytes with node:http, for what fetch will not do (chunked oversize bodies). */
export function rawPost(
  path: string,
  chunks: Buffer[],
  headers: Record<string, string | number>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(`${server.url}${path}`, { method: 'POST', headers }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }),
      );
      res.on('error', reject);
    });
    // The server answers 413 and closes without reading the rest: a reset while we still write
    // is expected; only a failure before any answer is one.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

export function asReply(raw: { status: number; text: string }): HttpReply {
  return { ...raw, headers: new Headers(), body: JSON.parse(raw.text) };
}

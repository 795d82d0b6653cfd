// Fixtures for the suites that call the app over real HTTP (security.*.test.ts, and the common
// parts of e2e.*.test.ts): keyrings on disk, the app as `pnpm serve` starts it, typed clients,
// hand-signed envelopes, raw POSTs and what a signed answer or refusal must look like.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient } from '@signet/client';
import type { tools } from '@signet/contracts';
import {
  newNonce,
  newRequestId,
  PROTOCOL_VERSION,
  type RequestEnvelope,
  type ResponseEnvelope,
  sign,
  verify,
} from '@signet/protocol';
import {
  generateSecret,
  type KeyringFile,
  type SignetErrorShape,
  type SignetRouter,
} from '@signet/server';
import pino, { type Logger } from 'pino';
import { afterAll, afterEach, expect } from 'vitest';
import { type AppServer, startApp } from '../app.ts';
import { frontConfig } from './front.ts';

export const SERVER_ID = 'mcp-server-001';
export type Router = SignetRouter<typeof tools>;

export interface Who {
  clientId: string;
  kid: string;
  secret: string;
}
export const alice: Who = { clientId: 'client-001', kid: 'k1', secret: generateSecret() };
export const bob: Who = { clientId: 'client-002', kid: 'k1', secret: generateSecret() };

export function keyringOf(...clients: Who[][]): KeyringFile {
  return {
    server_id: SERVER_ID,
    clients: clients.map((keys) => ({
      client_id: keys[0]!.clientId,
      tools: ['*'],
      keys: keys.map((k) => ({ kid: k.kid, secret: k.secret })),
    })),
  };
}

export const silent = pino({ level: 'silent' });
const dirs: string[] = [];
/** What a test started; closed after each test (see cleanUpAfterEachTest). */
export const apps: Array<{ close(opts?: { graceMs?: number }): Promise<void> }> = [];

/** Closes the apps each test started, and removes the temp directories after the file. */
export function cleanUpAfterEachTest(): void {
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close({ graceMs: 0 })));
  });
  afterAll(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
}

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'signet-security-'));
  dirs.push(dir);
  return dir;
}

export function writeKeyring(file: KeyringFile): string {
  const path = join(tempDir(), 'keyring.json');
  writeFileSync(path, JSON.stringify(file));
  return path;
}

/** The app as `pnpm serve` starts it (config from SIGNET_* variables), in this process. */
export async function startTestApp(
  keyringPath: string,
  env: Record<string, string> = {},
  logger: Logger = silent,
): Promise<AppServer> {
  const app = await startApp(
    frontConfig({
      SIGNET_PORT: '0',
      SIGNET_KEYRING: keyringPath,
      SIGNET_STORE: 'memory:',
      ...env,
    }),
    logger,
  );
  apps.push(app);
  return app;
}

/** A pino logger whose records the test can read. */
export function capturingLogger(): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, records };
}

export function typedClient(
  url: string,
  who: Who,
  opts: { now?: () => number; kid?: boolean } = {},
) {
  return createSignetClient<Router>({
    url,
    serverId: SERVER_ID,
    clientId: who.clientId,
    key: opts.kid === false ? { secret: who.secret } : { kid: who.kid, secret: who.secret },
    ...(opts.now ? { now: opts.now } : {}),
  });
}

export function signed(
  who: Who,
  tool: string,
  args: Record<string, unknown>,
  over: Record<string, unknown> = {},
): RequestEnvelope {
  return sign(
    {
      v: PROTOCOL_VERSION,
      request_id: newRequestId(),
      ts_ms: Date.now(),
      client_id: who.clientId,
      server_id: SERVER_ID,
      tool,
      args,
      nonce: newNonce(),
      kid: who.kid,
      ...over,
    },
    who.secret,
  ) as RequestEnvelope;
}

export interface HttpReply {
  status: number;
  headers: Headers;
  text: string;
  body: { result?: { data: ResponseEnvelope }; error?: SignetErrorShape };
}

export async function post(
  url: string,
  tool: string,
  body: unknown,
  contentType: string | null = 'application/json',
): Promise<HttpReply> {
  const response = await fetch(`${url}/trpc/${tool}`, {
    method: 'POST',
    headers: contentType === null ? {} : { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

export function expectOk(
  reply: HttpReply,
  request: { request_id: string; nonce: string },
  who: Who,
) {
  expect(reply.status, reply.text).toBe(200);
  const data = reply.body.result?.data;
  if (!data) throw new Error(`no envelope in ${reply.text}`);
  expect(verify(data, who.secret)).toBe(true);
  expect(data).toMatchObject({ request_id: request.request_id, nonce: request.nonce, ok: true });
  return data;
}

/** A refusal with `status` and `reason`; signed for `who` when given, else with no envelope. */
export function expectRefusal(reply: HttpReply, status: number, reason: string, who?: Who) {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.text).not.toMatch(/stack|\bat \/|node:internal|\.ts:\d/);
  const error = reply.body.error;
  if (!error) throw new Error(`no error in ${reply.text}`);
  expect(error.data.reason).toBe(reason);
  expect(error.data.httpStatus).toBe(status);
  if (who === undefined) {
    expect(error.data.envelope).toBeUndefined();
  } else {
    const envelope = error.data.envelope;
    if (!envelope) throw new Error(`no signed envelope in ${reply.text}`);
    expect(verify(envelope, who.secret)).toBe(true);
    expect(envelope).toMatchObject({ ok: false, status: 'error', error: { code: reason } });
  }
  return error;
}

export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (data) => {
      throw new Error(`expected a refusal, got ${JSON.stringify(data)}`);
    },
    (error: unknown) => error,
  );
}

// Fixtures for the suites that call the app over real HTTP (security.*.test.ts, and the common
// parts of e2e.*.test.ts): keyrings on disk, the app as `pnpm serve` starts it, typed clients,
// and the envelope kit of @signet/server/testing (hand-signed envelopes, raw POSTs, what a signed
// answer or refusal must look like) bound to this server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient } from '@signet/client';
import type { RequestEnvelope } from '@signet/protocol';
import { generateSecret, type KeyringFile, type SignetRouter } from '@signet/server';
import { signedRequest } from '@signet/server/testing';
import pino, { type Logger } from 'pino';
import { afterAll, afterEach } from 'vitest';
import { type AppServer, startApp } from '../app.ts';
import type { tools } from '../tools/contracts.ts';
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

/** A fresh request envelope signed by `who` for this server; `over` sets or deletes fields. */
export function signed(
  who: Who,
  tool: string,
  args: Record<string, unknown>,
  over: Record<string, unknown> = {},
): RequestEnvelope {
  return signedRequest({ serverId: SERVER_ID, ...who }, tool, args, over);
}

// The envelope kit's POST and checks, under the names these suites use: `post(url, tool, body)`,
// `expectOk(reply, request, who)` and `expectRefusal(reply, status, reason, who?)`.
export {
  type EnvelopeReply as HttpReply,
  expectAnswer as expectOk,
  expectRefusal,
  postEnvelope as post,
} from '@signet/server/testing';

export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (data) => {
      throw new Error(`expected a refusal, got ${JSON.stringify(data)}`);
    },
    (error: unknown) => error,
  );
}

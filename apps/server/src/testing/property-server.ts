// The server the property-based security suite (security.property.test.ts) runs against, and how
// it reads the answers: the signers and keyring, the census of how far each request got through
// the checks of DESIGN 1.4, the expectations for a signed answer, a signed refusal and a refused
// forgery, and how a call's envelope is built and signed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  canonicalize,
  hmacHex,
  isReasonCode,
  PROTOCOL_VERSION,
  REASON_STATUS,
  type ReasonCode,
  responseEnvelopeSchema,
  verify,
} from '@signet/protocol';
import { generateSecret, type KeyringFile } from '@signet/server';
import fc from 'fast-check';
import pino from 'pino';
import { expect } from 'vitest';
import { type AppServer, startApp } from '../app.ts';
import { frontConfig } from './front.ts';

// ---------------------------------------------------------------------------------------------
// The server under test

export const SERVER_ID = 'mcp-server-001';
export const WINDOW_MS = 300_000;
export const MAX_BODY_BYTES = 1024 * 1024;

export interface Signer {
  clientId: string;
  kid: string;
  secret: string;
}

/** fast-check prints a signer in a counterexample by name, not with its secret. */
function named(name: string, signer: Signer): Signer {
  Object.defineProperty(signer, fc.toStringMethod, { value: () => name });
  return signer;
}
export const alice1 = named('alice1', {
  clientId: 'client-001',
  kid: 'k1',
  secret: generateSecret(),
});
const alice2 = named('alice2', { clientId: 'client-001', kid: 'k2', secret: generateSecret() });
/** Non-ASCII client id, kid and secret: the key is the secret's UTF-8 bytes (DESIGN 1.3). */
const unicode = named('unicode', {
  clientId: 'clïent-ünïcode-🔑',
  kid: 'clé',
  secret: `${generateSecret()}-clé-✓`,
});
/** May call server_identity only. */
export const restricted = named('restricted', {
  clientId: 'client-ro',
  kid: 'k1',
  secret: generateSecret(),
});
/** Signers allowed to call every tool. */
export const FULL_SIGNERS: readonly Signer[] = [alice1, alice2, unicode];
export const ALL_SIGNERS: readonly Signer[] = [...FULL_SIGNERS, restricted];

const keyringFile: KeyringFile = {
  server_id: SERVER_ID,
  clients: [
    {
      client_id: alice1.clientId,
      tools: ['*'],
      keys: [alice1, alice2].map(({ kid, secret }) => ({ kid, secret })),
    },
    { client_id: unicode.clientId, keys: [{ kid: unicode.kid, secret: unicode.secret }] },
    {
      client_id: restricted.clientId,
      tools: ['server_identity'],
      keys: [{ kid: restricted.kid, secret: restricted.secret }],
    },
  ],
};

export const POST_TOOLS = [
  'server_identity',
  'batch_sum',
  'start_long_task',
  'poll_job',
  'cancel_job',
] as const;
export type PostTool = (typeof POST_TOOLS)[number];
/** Tools a valid call may run here (jobs take seconds, so start_long_task is only ever refused). */
export const QUICK_TOOLS = ['server_identity', 'batch_sum', 'poll_job', 'cancel_job'] as const;
export const ENVELOPE_FIELDS = [
  'v',
  'request_id',
  'ts_ms',
  'client_id',
  'server_id',
  'tool',
  'args',
  'nonce',
  'kid',
  'signature',
] as const;
export type EnvelopeField = (typeof ENVELOPE_FIELDS)[number];

let app: AppServer;
export let baseUrl: string;
let dir: string;
export let memoryAtStart: NodeJS.MemoryUsage;

export const MB = 1024 * 1024;
setFlagsFromString('--expose-gc');
/** A full collection, so that heap figures show what is retained rather than GC timing. */
const collectGarbage = runInNewContext('gc') as () => void;

export function settledMemory(): NodeJS.MemoryUsage {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage();
}
let prototypeKeys = '';

function ownKeysOf(value: object): string {
  return Reflect.ownKeys(value).map(String).sort().join(',');
}

/** Starts the server under test, as `pnpm serve` starts it (SQLite store, no rate limit). */
export async function startServer(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'signet-property-'));
  const keyringPath = join(dir, 'keyring.json');
  writeFileSync(keyringPath, JSON.stringify(keyringFile));
  app = await startApp(
    frontConfig({
      SIGNET_PORT: '0',
      SIGNET_STORE: `sqlite:${join(dir, 'signet.db')}`,
      SIGNET_KEYRING: keyringPath,
      SIGNET_RATE_LIMIT: '0',
    }),
    pino({ level: 'silent' }),
  );
  baseUrl = app.url.replace(/\/$/, '');
  prototypeKeys = `${ownKeysOf(Object.prototype)}|${ownKeysOf(Array.prototype)}`;
  memoryAtStart = settledMemory();
}

/** Stops the server under test and removes its files. */
export async function stopServer(): Promise<void> {
  await app?.close({ graceMs: 0 });
  if (dir) rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// The census: how far each request got through DESIGN 1.4

export const CHECK_NAMES = [
  '0 HTTP layer (route)',
  '1 size / JSON',
  '2 schema / v / tool',
  '3 signature',
  '4 server_id',
  '5 freshness',
  '6 nonce',
  '7 allowlist',
  '8 args',
  '9 ran',
];

/** The check of DESIGN 1.4 at which a reason code stops a call; -1 = must never happen here. */
const CHECK_OF: Record<ReasonCode, number> = {
  UNKNOWN_TOOL: 0,
  METHOD_NOT_ALLOWED: 0,
  PARSE_ERROR: 1,
  PAYLOAD_TOO_LARGE: 1,
  UNSUPPORTED_MEDIA_TYPE: 1,
  BAD_ENVELOPE: 2,
  UNSUPPORTED_VERSION: 2,
  TOOL_MISMATCH: 2,
  BAD_SIGNATURE: 3,
  WRONG_SERVER: 4,
  STALE_REQUEST: 5,
  REPLAYED_NONCE: 6,
  TOOL_NOT_ALLOWED: 7,
  INVALID_ARGS: 8,
  // The tool ran (check 9) and answered with an error of its own.
  JOB_NOT_FOUND: 9,
  REQUEST_ID_REUSED: 9,
  TOOL_FAILED: 9,
  // The rate limit is off, and nothing here may fail inside the server.
  RATE_LIMITED: -1,
  INTERNAL: -1,
  STORE_UNAVAILABLE: -1,
};

export const census = {
  /** stopped[k]: requests whose last check reached was k (9 = all passed, the tool ran). */
  stopped: new Array<number>(10).fill(0),
  total: 0,
  fiveXX: 0,
  unexpected: 0,
  /** Mutated or unsigned bodies that got a 2xx: must stay 0. */
  forgeriesAccepted: 0,
  /** Mutations that happened to leave the canonical envelope unchanged (not sent as forgeries). */
  noOpMutations: 0,
};

export interface Outcome {
  status: number;
  reason: ReasonCode | undefined;
  /** The check of DESIGN 1.4 the request stopped at (9 = ran), -1 if the answer is unexpected. */
  check: number;
  json: unknown;
  /** The signed response envelope: `result.data` of a 200, `error.data.envelope` of an error. */
  envelope: unknown;
}

export async function post(
  tool: string,
  body: string | Uint8Array,
  contentType: string | null = 'application/json',
): Promise<Outcome> {
  const headers: Record<string, string> = {};
  if (contentType !== null) headers['content-type'] = contentType;
  const response = await fetch(`${baseUrl}/trpc/${encodeURIComponent(tool)}`, {
    method: 'POST',
    headers,
    body,
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const shape = json as
    | { result?: { data?: unknown }; error?: { data?: { reason?: unknown; envelope?: unknown } } }
    | undefined;
  const data = shape?.error?.data;
  const reason = isReasonCode(data?.reason) ? data.reason : undefined;
  const check = response.status === 200 ? 9 : reason !== undefined ? CHECK_OF[reason] : -1;
  census.total++;
  if (response.status >= 500) census.fiveXX++;
  if (check < 0) census.unexpected++;
  else census.stopped[check]!++;
  const envelope = response.status === 200 ? shape?.result?.data : data?.envelope;
  return { status: response.status, reason, check, json, envelope };
}

export function describeOutcome(o: Outcome): string {
  const text = JSON.stringify(o.json) ?? 'no JSON';
  return `HTTP ${o.status} ${text.length > 400 ? `${text.slice(0, 400)}…` : text}`;
}

/** A 4xx refusal with a reason code of DESIGN 1.5 whose status it is. */
function expectRefusal(o: Outcome): void {
  expect(o.status, describeOutcome(o)).toBeGreaterThanOrEqual(400);
  expect(o.status, describeOutcome(o)).toBeLessThan(500);
  expect(o.reason, describeOutcome(o)).toBeDefined();
  expect(REASON_STATUS[o.reason!], describeOutcome(o)).toBe(o.status);
}

/**
 * What a forged, mutated or unauthenticated body must get: a 4xx before the signature is
 * accepted (checks 1-3, or the HTTP layer), and nothing signed.
 */
export function expectForgeryRefused(o: Outcome): void {
  if (o.status >= 200 && o.status < 300) census.forgeriesAccepted++;
  expectRefusal(o);
  expect(o.check, describeOutcome(o)).toBeGreaterThanOrEqual(0);
  expect(o.check, describeOutcome(o)).toBeLessThanOrEqual(3);
  expect(o.envelope, describeOutcome(o)).toBeUndefined();
}

export function expectNoPollution(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
  expect(`${ownKeysOf(Object.prototype)}|${ownKeysOf(Array.prototype)}`).toBe(prototypeKeys);
}

// ---------------------------------------------------------------------------------------------
// Building envelopes

/** Sets an own property, even `__proto__` (an assignment would set the prototype instead). */
export function put(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** The same object with its keys in `order` first (JSON.stringify keeps insertion order). */
export function ordered(
  value: Record<string, unknown>,
  order: readonly string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of order) if (Object.hasOwn(value, key)) put(out, key, value[key]);
  for (const key of Object.keys(value)) if (!Object.hasOwn(out, key)) put(out, key, value[key]);
  return out;
}

/** Nonces must be unique across the suite (and across fast-check's replays while shrinking). */
const RUN_TAG = Math.random().toString(36).slice(2, 8);
let nonceSeq = 0;
export function unique(nonce: string): string {
  const suffix = `-${RUN_TAG}${(nonceSeq++).toString(36)}`;
  return nonce.slice(0, 128 - suffix.length) + suffix;
}

export function signed(draft: Record<string, unknown>, secret: string): Record<string, unknown> {
  const out = ordered(draft, []);
  put(out, 'signature', hmacHex(secret, canonicalize(draft)));
  return out;
}

export function sameCanonical(a: unknown, b: unknown): boolean {
  try {
    return canonicalize(a) === canonicalize(b);
  } catch {
    return false;
  }
}

/** A valid call, as data: the envelope is built (ts_ms, unique nonce) and signed when sent. */
export interface CallSpec {
  tool: PostTool;
  args: Record<string, unknown>;
  signer: Signer;
  sendKid: boolean;
  requestId: string;
  nonce: string;
  tsOffset: number;
  order: readonly string[];
}

export function draftOf(spec: CallSpec): Record<string, unknown> {
  const draft: Record<string, unknown> = {
    v: PROTOCOL_VERSION,
    request_id: spec.requestId,
    ts_ms: Date.now() + spec.tsOffset,
    client_id: spec.signer.clientId,
    server_id: SERVER_ID,
    tool: spec.tool,
    args: spec.args,
    nonce: unique(spec.nonce),
  };
  if (spec.sendKid) draft.kid = spec.signer.kid;
  return draft;
}

function expectSignedFor(envelope: unknown, signer: Signer, draft: Record<string, unknown>): void {
  const parsed = responseEnvelopeSchema.safeParse(envelope);
  expect(parsed.success, JSON.stringify(envelope)).toBe(true);
  const env = envelope as Record<string, unknown> & { signature: string };
  expect(verify(env, signer.secret), 'response signature').toBe(true);
  for (const other of ALL_SIGNERS) {
    if (other.secret !== signer.secret) expect(verify(env, other.secret)).toBe(false);
  }
  expect(env.request_id).toBe(draft.request_id);
  expect(env.nonce).toBe(draft.nonce);
  expect(env.server_id).toBe(SERVER_ID);
  expect(Math.abs((env.ts_ms as number) - Date.now())).toBeLessThan(60_000);
}

/** A refusal at checks 4-8 (or a tool's own error at 9) carries a signed error envelope. */
export function expectSignedRefusal(
  o: Outcome,
  signer: Signer,
  draft: Record<string, unknown>,
): void {
  expectRefusal(o);
  expectSignedFor(o.envelope, signer, draft);
  const env = o.envelope as { ok: boolean; status: string; result: unknown; error: unknown };
  expect(env.ok).toBe(false);
  expect(env.status).toBe('error');
  expect(env.result).toBeNull();
  expect((env.error as { code: string }).code).toBe(o.reason);
}

/** What a valid call of `spec` must get: the tool's right answer, signed with the right key. */
export function expectRan(spec: CallSpec, draft: Record<string, unknown>, o: Outcome): void {
  expect(o.check, describeOutcome(o)).toBe(9);
  if (spec.tool === 'poll_job' || spec.tool === 'cancel_job') {
    // A random job id: the tool ran and found no such job (a signed 404).
    expect(o.status, describeOutcome(o)).toBe(404);
    expect(o.reason).toBe('JOB_NOT_FOUND');
    expectSignedRefusal(o, spec.signer, draft);
    return;
  }
  expect(o.status, describeOutcome(o)).toBe(200);
  expectSignedFor(o.envelope, spec.signer, draft);
  const env = o.envelope as { ok: boolean; status: string; result: Record<string, unknown> };
  expect(env.ok).toBe(true);
  expect(env.status).toBe('ok');
  if (spec.tool === 'server_identity') {
    expect(env.result.server_id).toBe(SERVER_ID);
    expect((env.result.capabilities as { protocol: string }).protocol).toBe(PROTOCOL_VERSION);
  } else {
    // What the server saw is what went over the wire (JSON has no -0).
    const numbers = JSON.parse(JSON.stringify(spec.args.numbers)) as number[];
    let total = 0;
    for (const n of numbers) total += n;
    expect(env.result).toEqual({ count: numbers.length, total });
  }
}

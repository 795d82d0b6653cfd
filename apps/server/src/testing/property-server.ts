// The server the property-based security suite (security.property.test.ts) runs against, and how
// it reads the answers: the signers and keyring, the census of how far each request got through
// the checks of DESIGN 1.4, and how a call's envelope is built (the expectations are in
// property-expect.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  canonicalize,
  type EnvelopeKey,
  ed25519PrivateKey,
  ed25519PublicKey,
  generateEd25519KeyPair,
  isReasonCode,
  type ReasonCode,
} from '@signet/protocol';
import { generateSecret, type KeyringFile } from '@signet/server';
import { type EnvelopeReply, postEnvelope, requestEnvelope } from '@signet/server/testing';
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
  /** What signs its requests: an HMAC secret, or an Ed25519 private key. */
  secret: EnvelopeKey;
  /** What verifies the server's answers to it, if not `secret`: the server's Ed25519 key. */
  answerKey?: EnvelopeKey;
}

/** The key that verifies the server's answers to `signer`. */
export function answerKeyOf(signer: Signer): EnvelopeKey {
  return signer.answerKey ?? signer.secret;
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
/** An Ed25519 client, answered with the server's Ed25519 key s1 (DESIGN 1.3). */
const serverKey = generateEd25519KeyPair();
const edKey = generateEd25519KeyPair();
export const ed = named('ed25519', {
  clientId: 'client-ed',
  kid: 'e1',
  secret: ed25519PrivateKey(edKey.privateKey),
  answerKey: ed25519PublicKey(serverKey.publicKey),
});
/** Signers allowed to call every tool. */
export const FULL_SIGNERS: readonly Signer[] = [alice1, alice2, unicode, ed];
export const ALL_SIGNERS: readonly Signer[] = [...FULL_SIGNERS, restricted];

const keyringFile: KeyringFile = {
  server_id: SERVER_ID,
  clients: [
    {
      client_id: alice1.clientId,
      tools: ['*'],
      keys: [alice1, alice2].map(({ kid, secret }) => ({ kid, secret: secret as string })),
    },
    { client_id: unicode.clientId, keys: [{ kid: unicode.kid, secret: unicode.secret as string }] },
    {
      client_id: restricted.clientId,
      tools: ['server_identity'],
      keys: [{ kid: restricted.kid, secret: restricted.secret as string }],
    },
    {
      client_id: ed.clientId,
      keys: [{ kid: ed.kid, alg: 'ed25519', public_key: edKey.publicKey }],
    },
  ],
  server_keys: [{ kid: 's1', alg: 'ed25519', private_key: serverKey.privateKey }],
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
  /** Valid calls by the Ed25519 signer that ran, answered under the server key. */
  ed25519Ran: 0,
};

export interface Outcome extends EnvelopeReply {
  reason: ReasonCode | undefined;
  /** The check of DESIGN 1.4 the request stopped at (9 = ran), -1 if the answer is unexpected. */
  check: number;
  /** The signed response envelope: `result.data` of a 200, `error.data.envelope` of an error. */
  envelope: unknown;
}

/** POSTs `body` to `tool` (any text: it is URL-encoded), and counts the answer in the census. */
export async function post(
  tool: string,
  body: string | Uint8Array,
  contentType: string | null = 'application/json',
): Promise<Outcome> {
  const reply = await postEnvelope(baseUrl, encodeURIComponent(tool), body, { contentType });
  // (Any JSON may come back to a hostile body: each step is optional.)
  const data = reply.json?.error?.data;
  const reason = isReasonCode(data?.reason) ? data.reason : undefined;
  const check = reply.status === 200 ? 9 : reason !== undefined ? CHECK_OF[reason] : -1;
  census.total++;
  if (reply.status >= 500) census.fiveXX++;
  if (check < 0) census.unexpected++;
  else census.stopped[check]!++;
  const envelope = reply.status === 200 ? reply.json?.result?.data : data?.envelope;
  return { ...reply, reason, check, envelope };
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

/** The unsigned envelope of a call by `signer` (naming its kid if `sendKid`) to this server. */
export function draftFor(
  signer: Signer,
  sendKid: boolean,
  tool: string,
  args: unknown,
  fields: Record<string, unknown>,
): Record<string, unknown> {
  const who = { serverId: SERVER_ID, ...signer, kid: sendKid ? signer.kid : undefined };
  return requestEnvelope(who, tool, args, fields);
}

export function draftOf(spec: CallSpec): Record<string, unknown> {
  return draftFor(spec.signer, spec.sendKid, spec.tool, spec.args, {
    request_id: spec.requestId,
    ts_ms: Date.now() + spec.tsOffset,
    nonce: unique(spec.nonce),
  });
}

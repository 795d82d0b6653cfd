import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  canonicalize,
  ed25519PrivateKey,
  ed25519PublicKey,
  generateEd25519KeyPair,
  sign,
} from '@signet/protocol';
import { argsDigest, type CallPayload, lineOf } from '../audit/chain.ts';
import { listChains } from '../audit/files.ts';
import { type AuditKeys, verifyAuditFolder } from '../audit/verify.ts';
import { AuditLog } from '../audit/writer.ts';

// A small audit log for the tests: HMAC and Ed25519 calls, job changes, rotation, checkpoints.

/** Every log of a test file goes under this folder; the test file removes it afterwards. */
let root: string | undefined;
/** The temporary folder the test logs are written under (made on first use; remove it after). */
export function auditTestRoot(): string {
  root ??= mkdtempSync(join(tmpdir(), 'signet-audit-'));
  return root;
}

export const serverPair = generateEd25519KeyPair();
export const clientPair = generateEd25519KeyPair();
export const serverKey = { kid: 's1', privateKey: ed25519PrivateKey(serverPair.privateKey) };

export const keys: AuditKeys = {
  serverKeys: [{ kid: 's1', publicKey: ed25519PublicKey(serverPair.publicKey) }],
  clientKeys: (clientId, kid) =>
    clientId === 'edge' && kid === 'e1' ? ed25519PublicKey(clientPair.publicKey) : undefined,
};

/** A call entry; Ed25519 ones carry the envelope the client signed. */
export function call(i: number, ed25519: boolean): CallPayload {
  const args = { numbers: [i, i + 1], note: `call ${i}` };
  const base = {
    client_id: ed25519 ? 'edge' : 'client-001',
    tool: i % 3 === 0 ? 'batch_sum' : 'echo',
    request_id: `req-${i}`,
    nonce: `nonce-000000000000-${i}`,
  };
  const payload: CallPayload = {
    type: 'call',
    ...base,
    kid: ed25519 ? 'e1' : 'k1',
    outcome: i % 4 === 3 ? { status: 'error', reason: 'TOOL_FAILED' } : { status: 'ok' },
    args_sha256: argsDigest(args),
  };
  if (ed25519) {
    const envelope = {
      v: 'mcp/0.1',
      ts_ms: 1_700_000_000_000 + i,
      server_id: 's',
      args,
      kid: 'e1',
      ...base,
    };
    payload.envelope = canonicalize(sign(envelope, ed25519PrivateKey(clientPair.privateKey)));
  }
  return payload;
}

/**
 * Writes `count` entries with a checkpoint every 10, into a fresh folder; `tail` more entries
 * follow the last checkpoint (the log is then left as a crash would leave it).
 */
export function writeTestLog(options: {
  count: number;
  tail?: number;
  maxBytes?: number;
  signed?: boolean;
}): { folder: string; log: AuditLog } {
  const folder = join(mkdtempSync(join(auditTestRoot(), 'log-')), 'audit');
  let clock = Date.UTC(2026, 0, 1);
  const log = AuditLog.open({
    folder,
    maxBytes: options.maxBytes ?? 4096,
    now: () => (clock += 1000),
    ...(options.signed === false ? {} : { serverKey }),
  });
  const entry = (i: number) =>
    i % 5 === 4
      ? log.append({
          type: 'job',
          job_id: `job-${i}`,
          client_id: 'client-001',
          tool: 'start_long_task',
          status: i % 2 ? 'running' : 'done',
          job_seq: i,
        })
      : log.append(call(i, i % 2 === 1));
  for (let i = 0; i < options.count; i++) {
    entry(i);
    if (i % 10 === 9) log.checkpoint();
  }
  if (options.tail === undefined) {
    log.close();
  } else {
    log.checkpoint();
    for (let i = 0; i < options.tail; i++) entry(options.count + i);
    log.flush();
  }
  return { folder, log };
}

/** Every line of the folder's one chain, with where it is. */
export interface Located {
  file: string;
  line: number;
  text: string;
}

export function linesOf(folder: string): Located[] {
  const [files] = [...listChains(folder).values()];
  return (files ?? []).flatMap((f) =>
    readFileSync(f.path, 'utf8')
      .split('\n')
      .slice(0, -1)
      .map((text, i) => ({ file: f.name, line: i + 1, text })),
  );
}

/** Rewrites the folder's files so that they hold `lines` (each kept in its `file`). */
export function rewrite(folder: string, lines: readonly Located[]): void {
  const byFile = new Map<string, string[]>();
  for (const name of readdirSync(folder)) byFile.set(name, []);
  for (const l of lines) byFile.get(l.file)!.push(`${l.text}\n`);
  for (const [name, texts] of byFile) writeFileSync(join(folder, name), texts.join(''));
}

/** A change to the line at index k: the lines after it, or undefined if it does not apply. */
type Change = (lines: Located[], k: number) => Located[] | undefined;

const withText = (l: Located, text: string): Located => ({ ...l, text });
const edit =
  (field: string, to: (value: unknown) => unknown, only?: string): Change =>
  (lines, k) => {
    const entry = JSON.parse(lines[k]!.text);
    if (only !== undefined && entry.type !== only) return undefined;
    entry[field] = to(entry[field]);
    return lines.with(k, withText(lines[k]!, lineOf(entry)));
  };

const CHANGES: Record<string, Change> = {
  'edit at': edit('at', (at) => Number(at) + 1),
  'edit prev': edit('prev', () => randomBytes(32).toString('hex')),
  'edit tool': edit('tool', () => 'other', 'call'),
  'edit outcome': edit('outcome', () => ({ status: 'error', reason: 'FORGED' }), 'call'),
  'edit job status': edit('status', (s) => (s === 'cancelled' ? 'done' : 'cancelled'), 'job'),
  'edit checkpoint count': edit('count', (n) => Number(n) - 1, 'checkpoint'),
  'edit checkpoint head': edit('head', () => randomBytes(32).toString('hex'), 'checkpoint'),
  'edit checkpoint signature': edit('signature', () => null, 'checkpoint'),
  'add whitespace': (lines, k) => lines.with(k, withText(lines[k]!, ` ${lines[k]!.text}`)),
  delete: (lines, k) => lines.toSpliced(k, 1),
  'insert a copied line': (lines, k) =>
    lines.toSpliced(k, 0, withText(lines[k]!, lines[k === 0 ? 1 : k - 1]!.text)),
  'swap with the next': (lines, k) =>
    k + 1 < lines.length
      ? lines
          .with(k, withText(lines[k]!, lines[k + 1]!.text))
          .with(k + 1, withText(lines[k + 1]!, lines[k]!.text))
      : undefined,
};

/** Where index k of `lines` sits once they are written back (a removal shifts line numbers). */
function locate(lines: Located[], k: number): string {
  const l = lines[k]!;
  const line = lines.slice(0, k).filter((o) => o.file === l.file).length + 1;
  return `${l.file}:${line}`;
}

/**
 * Makes every single-line change of CHANGES to the folder's one chain, in turn, and asserts that
 * the verifier fails naming that line; puts the log back, and returns how many changes it tried.
 */
export function expectEveryChangeNamed(folder: string, keys: AuditKeys): number {
  const original = linesOf(folder);
  let tried = 0;
  for (const [name, change] of Object.entries(CHANGES)) {
    for (let k = 0; k < original.length; k++) {
      // The very last line has nothing after it to vouch for it: changing it is the same as
      // cutting the tail and appending another line, which only a checkpoint could catch.
      if (k === original.length - 1 && name !== 'insert a copied line') continue;
      const changed = change(original, k);
      if (!changed) continue;
      rewrite(folder, changed);
      const report = verifyAuditFolder(folder, keys);
      const where = `${name} at ${original[k]!.file}:${original[k]!.line}`;
      assert.equal(report.ok, false, `${where} was not noticed`);
      const f = report.failure!;
      const named = `${f.file}:${f.line}`;
      // A broken link between the last two lines cannot tell which side changed: nothing
      // follows to check the last one against. (It is after the last checkpoint.)
      const lastLink =
        k === original.length - 2 && k + 1 < changed.length && named === locate(changed, k + 1);
      if (!lastLink) assert.equal(named, locate(changed, k), `${where}: ${f.reason}`);
      tried++;
    }
  }
  rewrite(folder, original);
  assert.equal(verifyAuditFolder(folder, keys).ok, true, 'the restored log verifies');
  return tried;
}

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
import { argsDigest, type CallPayload } from '../audit/chain.ts';
import { listChains } from '../audit/files.ts';
import type { AuditKeys } from '../audit/verify.ts';
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

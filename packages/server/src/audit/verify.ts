import type { KeyObject } from 'node:crypto';
import { verify } from '@signet/protocol';
import {
  type AuditEntry,
  argsDigest,
  type CallEntry,
  type CheckpointEntry,
  checkpointVerifies,
  genesisOf,
  lineOf,
  sha256Hex,
} from './chain.ts';
import { auditFileName, type ChainFile, type ChainLine, listChains, readLines } from './files.ts';

// Checks an audit folder (issue 20): every chain's links, positions, checkpoints and Ed25519
// call signatures. It stops at the first bad line of a chain and names it, with why.

export interface AuditKeys {
  /** Public keys of the server keys that sign checkpoints. */
  serverKeys: readonly { kid: string; publicKey: KeyObject }[];
  /** The Ed25519 public key of a client's key, for the envelopes of its calls. */
  clientKeys: (clientId: string, kid: string) => KeyObject | undefined;
}

/** What a chain holds, once it verified. */
export interface ChainReport {
  chain: string;
  files: number;
  /** Call and job entries (checkpoints not counted). */
  entries: number;
  checkpoints: number;
  unsignedCheckpoints: number;
  clients: string[];
  firstAt?: number;
  lastAt?: number;
  /** Entries after the last checkpoint: intact links, but nothing signed vouches for them. */
  unanchored: number;
  /** `file:line` of a torn last line (a crash mid-write), which was ignored. */
  torn?: string;
}

export interface AuditFailure {
  chain: string;
  file: string;
  line: number;
  reason: string;
}

export interface AuditReport {
  ok: boolean;
  chains: ChainReport[];
  /** The first bad line of the first chain that has one. */
  failure?: AuditFailure;
}

export function verifyAuditFolder(folder: string, keys: AuditKeys): AuditReport {
  const chains: ChainReport[] = [];
  for (const [chain, files] of listChains(folder)) {
    const result = verifyChain(chain, files, keys);
    if ('reason' in result) return { ok: false, chains, failure: result };
    chains.push(result);
  }
  return { ok: true, chains };
}

class Bad extends Error {}

function verifyChain(
  chain: string,
  files: readonly ChainFile[],
  keys: AuditKeys,
): ChainReport | AuditFailure {
  const lines: ChainLine[] = [];
  for (const [i, file] of files.entries()) {
    if (file.n !== i + 1) {
      return { chain, file: auditFileName(chain, i + 1), line: 0, reason: 'the file is missing' };
    }
    lines.push(...readLines(file));
  }
  const report: ChainReport = {
    chain,
    files: files.length,
    entries: 0,
    checkpoints: 0,
    unsignedCheckpoints: 0,
    clients: [],
    unanchored: 0,
  };
  // A crash can tear the very last line; it is reported and left out. Anywhere else a line
  // without its newline is a change.
  const last = lines.at(-1);
  if (last && (last.unterminated || parse(last.text) === undefined)) {
    report.torn = `${last.file}:${last.line}`;
    lines.pop();
  }
  const hashes = lines.map((l) => sha256Hex(l.text));
  const clients = new Set<string>();
  let lastCheckpoint = -1;
  let previousVouched = false; // the line before is a checkpoint whose signature verified
  for (const [i, where] of lines.entries()) {
    const fail = (reason: string, at = where): AuditFailure => ({
      chain,
      file: at.file,
      line: at.line,
      reason,
    });
    if (where.unterminated) return fail('the line has no newline, and is not the last one');
    const entry = parse(where.text);
    if (entry === undefined) return fail('not a JSON object');
    let canonical: string | undefined;
    try {
      canonical = lineOf(entry);
    } catch {}
    if (canonical !== where.text) return fail('not in canonical (JCS) form');
    if (entry.seq !== i) {
      return fail(
        `seq ${String(entry.seq)} where ${i} was expected: a line was removed, inserted or moved`,
      );
    }
    let vouched = false;
    try {
      vouched = checkEntry(entry, keys);
    } catch (error) {
      if (error instanceof Bad) return fail(error.message);
      throw error;
    }
    const expected = i === 0 ? genesisOf(chain) : hashes[i - 1];
    if (entry.prev !== expected) {
      if (i === 0) return fail("prev is not the chain's genesis value");
      // One link broke: either this line (its prev) or the line before changed. The line that
      // changed breaks its link to the next line too; a checkpoint that verified did not change.
      const next = lines[i + 1] ? parse(lines[i + 1]!.text) : undefined;
      const thisChanged = next ? next.prev !== hashes[i] : !vouched || previousVouched;
      if (thisChanged || previousVouched) {
        return fail(
          next ? 'prev does not match the line before' : 'the chain breaks before the last line',
        );
      }
      return fail('the line does not match the hash the next line records', lines[i - 1]);
    }
    if (entry.type === 'checkpoint') {
      // One log signs all its checkpoints or none: an unsigned one among signed ones is a
      // signature stripped to pass an edited last checkpoint off as unsigned.
      if (report.checkpoints > 0 && (entry.signature === null) !== report.unsignedCheckpoints > 0) {
        return fail('the chain mixes signed and unsigned checkpoints');
      }
      report.checkpoints++;
      if (entry.signature === null) report.unsignedCheckpoints++;
      lastCheckpoint = i;
    } else {
      report.entries++;
      clients.add(entry.client_id);
    }
    previousVouched = vouched;
    report.firstAt ??= entry.at;
    report.lastAt = entry.at;
  }
  report.clients = [...clients].sort();
  report.unanchored = lines.length - 1 - lastCheckpoint;
  return report;
}

function parse(text: string): (AuditEntry & Record<string, unknown>) | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as AuditEntry & Record<string, unknown>;
    }
  } catch {}
  return undefined;
}

const HEX64 = /^[0-9a-f]{64}$/;
const isString = (value: unknown): value is string => typeof value === 'string';

/** An entry's own fields, signatures and envelope; true for a checkpoint whose signature verified. */
function checkEntry(entry: AuditEntry, keys: AuditKeys): boolean {
  if (!Number.isSafeInteger(entry.at)) throw new Bad('at is not a time in ms');
  if (!isString(entry.prev) || !HEX64.test(entry.prev)) throw new Bad('prev is not a SHA-256');
  switch (entry.type) {
    case 'call':
      checkCall(entry, keys);
      return false;
    case 'job':
      if (![entry.job_id, entry.client_id, entry.tool, entry.status].every(isString)) {
        throw new Bad('a job entry needs job_id, client_id, tool and status');
      }
      if (!Number.isSafeInteger(entry.job_seq)) throw new Bad('job_seq is not an integer');
      return false;
    case 'checkpoint':
      return checkCheckpoint(entry, keys);
    default:
      throw new Bad(`unknown type ${JSON.stringify((entry as { type: unknown }).type)}`);
  }
}

function checkCall(entry: CallEntry, keys: AuditKeys): void {
  if (![entry.client_id, entry.tool, entry.request_id, entry.nonce].every(isString)) {
    throw new Bad('a call entry needs client_id, tool, request_id and nonce');
  }
  if (
    typeof entry.outcome !== 'object' ||
    entry.outcome === null ||
    !isString(entry.outcome.status)
  ) {
    throw new Bad('a call entry needs outcome.status');
  }
  if (!isString(entry.args_sha256) || !HEX64.test(entry.args_sha256)) {
    throw new Bad('args_sha256 is not a SHA-256');
  }
  if (entry.envelope === undefined) return;
  if (!isString(entry.envelope)) throw new Bad('envelope is not a string');
  const envelope = parse(entry.envelope) as Record<string, unknown> | undefined;
  if (!envelope || !isString(envelope.signature))
    throw new Bad('envelope is not a signed envelope');
  for (const field of ['client_id', 'kid', 'tool', 'request_id', 'nonce'] as const) {
    if (envelope[field] !== entry[field]) throw new Bad(`envelope's ${field} is not the entry's`);
  }
  let digest: string | undefined;
  try {
    digest = argsDigest(envelope.args);
  } catch {}
  if (digest !== entry.args_sha256) throw new Bad("envelope's args do not match args_sha256");
  if (!isString(entry.kid)) throw new Bad('an Ed25519 call names no kid');
  const key = keys.clientKeys(entry.client_id, entry.kid);
  if (!key) throw new Bad(`no public key for client ${entry.client_id} kid ${entry.kid}`);
  if (!verify(envelope as { signature: string }, key)) {
    throw new Bad("envelope's signature does not verify with the client's key");
  }
}

function checkCheckpoint(entry: CheckpointEntry, keys: AuditKeys): boolean {
  if (entry.head !== entry.prev) throw new Bad("checkpoint's head is not the line before");
  if (entry.count !== entry.seq) throw new Bad("checkpoint's count is not its position");
  if (entry.signature === null) return false;
  const key = keys.serverKeys.find((k) => k.kid === entry.kid);
  if (!key) throw new Bad(`checkpoint signed by unknown server key ${String(entry.kid)}`);
  if (!checkpointVerifies(entry, key.publicKey)) throw new Bad("checkpoint's signature is bad");
  return true;
}

import type { KeyObject } from 'node:crypto';
import { hash } from 'node:crypto';
import {
  canonicalize,
  canonicalJson,
  ed25519Hex,
  ed25519Verifies,
  jcsNumber,
  jcsString,
} from '@signet/protocol';

// The audit log's entries (issue 20): one JCS line each, chained by the SHA-256 of the previous
// line's exact bytes, so that any change, removal, insertion or reordering breaks a link. A
// checkpoint, signed by a server key, anchors everything before it: without a server key nobody
// can rewrite the chain up to a checkpoint and sign it again.

/** What the server answered a call: its response status, and the reason code of a refusal. */
export interface AuditOutcome {
  status: string;
  reason?: string;
}

/** One tool call, as the envelope middleware saw it. */
export interface CallPayload {
  type: 'call';
  client_id: string;
  kid?: string;
  tool: string;
  request_id: string;
  nonce: string;
  outcome: AuditOutcome;
  /** SHA-256 hex of the JCS of the call's args. */
  args_sha256: string;
  /** Ed25519 calls: the signed request envelope's JCS text, so anyone can check the signature. */
  envelope?: string;
}

/** One change of a job's status. */
export interface JobPayload {
  type: 'job';
  job_id: string;
  client_id: string;
  tool: string;
  status: string;
  /** The job's own sequence number (its signed job sequence; `seq` is the chain's). */
  job_seq: number;
}

/** A checkpoint: `head` and `count` name everything before it. */
export interface CheckpointPayload {
  type: 'checkpoint';
  /** The hash of the line before it (its `prev`). */
  head: string;
  /** How many lines come before it (its own `seq`). */
  count: number;
  kid?: string;
  /** Ed25519 (hex) over the JCS of the entry without `signature`; null: no server key. */
  signature: string | null;
}

/** What a caller appends; the log adds `seq`, `at` and `prev`. */
export type AppendPayload = CallPayload | JobPayload;

/** The fields every line has. */
export interface EntryHead {
  /** Position in the chain, from 0 (across files). */
  seq: number;
  /** Milliseconds since the epoch. */
  at: number;
  /** SHA-256 hex of the previous line's bytes, or the chain's genesis value. */
  prev: string;
}

export type CallEntry = EntryHead & CallPayload;
export type JobEntry = EntryHead & JobPayload;
export type CheckpointEntry = EntryHead & CheckpointPayload;
export type AuditEntry = CallEntry | JobEntry | CheckpointEntry;

export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** The `prev` of a chain's first line: binds the chain to its id (in its file names). */
export function genesisOf(chainId: string): string {
  return sha256Hex(`signet-audit:${chainId}`);
}

/**
 * An entry's line, without its newline: its JCS text, so a verifier can tell it was not
 * re-written. Call and job entries, one per call and per job change, are written member by member
 * in JCS order (as the protocol writes its signing inputs); `chain.test.ts` holds them to the
 * canonicalizer's output. Anything else an entry holds makes a line no entry of the kind has.
 */
export function lineOf(entry: AuditEntry): string {
  return entry.type === 'checkpoint' ? canonicalJson(entry) : payloadLine(entry, entry);
}

/** The line of the entry `payload` makes at `head`, without making the entry itself. */
export function payloadLine(payload: AppendPayload, head: EntryHead): string {
  return payload.type === 'call' ? callLine(payload, head) : jobLine(payload, head);
}

function callLine(e: CallPayload, h: EntryHead): string {
  const envelope = e.envelope === undefined ? '' : `"envelope":${jcsString(e.envelope)},`;
  const kid = e.kid === undefined ? '' : `"kid":${jcsString(e.kid)},`;
  const { reason, status } = e.outcome;
  const outcome = `{${reason === undefined ? '' : `"reason":${jcsString(reason)},`}"status":${jcsString(status)}}`;
  return `{"args_sha256":${jcsString(e.args_sha256)},"at":${jcsNumber(h.at)},"client_id":${jcsString(e.client_id)},${envelope}${kid}"nonce":${jcsString(e.nonce)},"outcome":${outcome},"prev":${jcsString(h.prev)},"request_id":${jcsString(e.request_id)},"seq":${jcsNumber(h.seq)},"tool":${jcsString(e.tool)},"type":"call"}`;
}

function jobLine(e: JobPayload, h: EntryHead): string {
  return `{"at":${jcsNumber(h.at)},"client_id":${jcsString(e.client_id)},"job_id":${jcsString(e.job_id)},"job_seq":${jcsNumber(e.job_seq)},"prev":${jcsString(h.prev)},"seq":${jcsNumber(h.seq)},"status":${jcsString(e.status)},"tool":${jcsString(e.tool)},"type":"job"}`;
}

/** The SHA-256 hex of a call's args, as `args_sha256` holds it. */
export function argsDigest(args: unknown): string {
  return sha256Hex(canonicalJson(args));
}

/** The bytes a checkpoint's signature covers. */
export function checkpointSigningInput(entry: CheckpointEntry): string {
  const { signature: _ignored, ...unsigned } = entry;
  return canonicalize(unsigned);
}

/** A checkpoint after the line hashed `head`, signed by `key` when there is one. */
export function makeCheckpoint(
  head: { seq: number; at: number; prev: string },
  key?: { kid: string; privateKey: KeyObject },
): CheckpointEntry {
  const entry: CheckpointEntry = {
    seq: head.seq,
    at: head.at,
    prev: head.prev,
    type: 'checkpoint',
    head: head.prev,
    count: head.seq,
    signature: null,
  };
  if (!key) return entry;
  entry.kid = key.kid;
  entry.signature = ed25519Hex(key.privateKey, checkpointSigningInput(entry));
  return entry;
}

/** Whether a checkpoint's signature is by `publicKey`. */
export function checkpointVerifies(entry: CheckpointEntry, publicKey: KeyObject): boolean {
  return (
    typeof entry.signature === 'string' &&
    ed25519Verifies(publicKey, checkpointSigningInput(entry), entry.signature)
  );
}

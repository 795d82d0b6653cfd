import type { KeyObject } from 'node:crypto';
import { hash } from 'node:crypto';
import { canonicalize, canonicalJson, ed25519Hex, ed25519Verifies } from '@signet/protocol';

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

/** An entry's line, without its newline: its JCS text, so a verifier can tell it was not re-written. */
export function lineOf(entry: AuditEntry): string {
  // (Members in JCS order take canonicalJson's fast path: the engine's own JSON.stringify.)
  return canonicalJson(inKeyOrder(entry));
}

/** `value` with its own members, and those of its object members, in JCS (UTF-16) key order. */
function inKeyOrder(value: object): object {
  const keys = Object.keys(value).sort();
  const ordered: Record<string, unknown> = {};
  for (const key of keys) {
    const member = (value as Record<string, unknown>)[key];
    ordered[key] =
      typeof member === 'object' && member !== null && !Array.isArray(member)
        ? inKeyOrder(member)
        : member;
  }
  return ordered;
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

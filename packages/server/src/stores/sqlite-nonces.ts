import type Database from 'better-sqlite3';
import { expirySeconds, NonceIndex, type NonceKey, nonceKey } from './nonce-index.ts';

export const NONCE_SCHEMA = `
  -- The durable log of claimed nonces, one row per group commit: lookups go to the in-memory
  -- index (this process holds the file exclusively), so the log is only appended to, read back
  -- at start-up and pruned from its old end. "keys" holds 12 bytes a nonce: the 64-bit hash of
  -- (client_id, nonce) and its expiry in whole seconds, as three big-endian 32-bit words. "id"
  -- grows with every row and is at least 1024 times the row's last expiry in ms, so the rows
  -- with id < 1024 * now have all expired: appends and pruning both touch only the ends of one
  -- b-tree. (A row per batch, not per nonce: a row costs more than its bytes.)
  CREATE TABLE IF NOT EXISTS nonce_batches (
    id   INTEGER PRIMARY KEY,
    keys BLOB    NOT NULL
  );
`;

const NONCE_RECORD = 12;

/** The least id of a nonce batch whose last nonce expires at `expiresAtMs` (see the schema). */
function batchIdFloor(expiresAtMs: number): number {
  return Math.max(0, Math.ceil(expiresAtMs)) * 1024;
}

/** The id of the batch after `previous` holding nonces that expire at `expiresAtMs`. */
function nextBatchId(previous: number, expiresAtMs: readonly number[]): number {
  let last = 0;
  for (const expires of expiresAtMs) last = Math.max(last, expires);
  return Math.max(previous + 1, batchIdFloor(last));
}

/** The `keys` blob of a batch of nonces (see the schema). */
function encodeNonces(keys: readonly NonceKey[], expiresAtMs: readonly number[]): Buffer {
  const blob = Buffer.allocUnsafe(keys.length * NONCE_RECORD);
  for (let i = 0; i < keys.length; i++) {
    blob.writeUInt32BE(keys[i]!.hi, i * NONCE_RECORD);
    blob.writeUInt32BE(keys[i]!.lo, i * NONCE_RECORD + 4);
    blob.writeUInt32BE(expirySeconds(expiresAtMs[i]!), i * NONCE_RECORD + 8);
  }
  return blob;
}

/** Claims waiting for the next group commit, and the promise their callers wait on. */
interface ClaimBatch {
  keys: NonceKey[];
  expires: number[];
  committed: Promise<boolean>;
  resolve(fresh: boolean): void;
  reject(error: unknown): void;
}

/**
 * The claimed nonces of a SQLite file: an in-memory index that answers, over the durable log it
 * is read back from at start-up.
 */
export class SqliteNonceLog {
  // Prepared once: a claim runs on every request, and preparing costs more than running.
  private readonly stmts: ReturnType<typeof prepare>;
  private lastBatchId: number;
  private batch: ClaimBatch | undefined;
  private readonly index = new NonceIndex();

  constructor(db: Database.Database) {
    this.stmts = prepare(db);
    this.lastBatchId = this.stmts.lastBatchId.get()?.id ?? 0;
    this.load();
  }

  /**
   * Group commit: the index answers at once, and the claims made while the event loop handles
   * one batch of sockets are written in one transaction, committed before any of them is
   * answered. A commit costs far more than an insert, so under load this is several times
   * cheaper per call than `claim`.
   */
  claimSoon(clientId: string, nonce: string, expiresAtMs: number): Promise<boolean> {
    const key = nonceKey(clientId, nonce);
    if (!this.index.claim(key, expiresAtMs)) return Promise.resolve(false);
    let batch = this.batch;
    if (!batch) {
      let resolve!: (fresh: boolean) => void;
      let reject!: (error: unknown) => void;
      const committed = new Promise<boolean>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      batch = { keys: [], expires: [], committed, resolve, reject };
      this.batch = batch;
      setImmediate(this.commitBatch);
    }
    batch.keys.push(key);
    batch.expires.push(expiresAtMs);
    return batch.committed;
  }

  private readonly commitBatch = (): void => {
    const batch = this.batch;
    if (!batch) return;
    this.batch = undefined;
    try {
      this.append(batch.keys, batch.expires);
    } catch (error) {
      // Not recorded, so not spent: the same signed call may be retried.
      for (const key of batch.keys) this.index.release(key);
      batch.reject(error);
      return;
    }
    batch.resolve(true);
  };

  claim(clientId: string, nonce: string, expiresAtMs: number): boolean {
    const key = nonceKey(clientId, nonce);
    if (!this.index.claim(key, expiresAtMs)) return false;
    try {
      this.append([key], [expiresAtMs]);
    } catch (error) {
      this.index.release(key);
      throw error;
    }
    return true;
  }

  private append(keys: readonly NonceKey[], expiresAtMs: readonly number[]): void {
    const id = nextBatchId(this.lastBatchId, expiresAtMs);
    this.stmts.append.run(id, encodeNonces(keys, expiresAtMs));
    this.lastBatchId = id;
  }

  /** The nonces in the index (expired ones until the next prune). */
  get size(): number {
    return this.index.size;
  }

  prune(now: number): number {
    this.stmts.prune.run(batchIdFloor(now));
    return this.index.prune(now);
  }

  /** Reads the log into the index (start-up); what expired goes at the first prune. */
  private load(): void {
    for (const { keys } of this.stmts.read.iterate()) {
      for (let at = 0; at + NONCE_RECORD <= keys.length; at += NONCE_RECORD) {
        const key = { hi: keys.readUInt32BE(at), lo: keys.readUInt32BE(at + 4) };
        this.index.claim(key, keys.readUInt32BE(at + 8) * 1000);
      }
    }
  }
}

function prepare(db: Database.Database) {
  return {
    append: db.prepare<[number, Buffer]>('INSERT INTO nonce_batches (id, keys) VALUES (?, ?)'),
    lastBatchId: db.prepare<[], { id: number }>('SELECT max(id) AS id FROM nonce_batches'),
    read: db.prepare<[], { keys: Buffer }>('SELECT keys FROM nonce_batches'),
    prune: db.prepare<[number]>('DELETE FROM nonce_batches WHERE id < ?'),
  };
}

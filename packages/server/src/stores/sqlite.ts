import type { JobStatus } from '@signet/protocol';
import Database from 'better-sqlite3';
import { expirySeconds, NonceIndex, type NonceKey, nonceKey } from './nonce-index.ts';
import type { JobEvent, JobPatch, JobRecord, LocalStore } from './types.ts';

/** Bump when the schema changes, and migrate from the older versions in `migrate`. */
const SCHEMA_VERSION = 3;

const SCHEMA = `
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

  CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT    PRIMARY KEY,
    client_id   TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    tool        TEXT    NOT NULL,
    args        TEXT    NOT NULL,
    args_hash   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    progress    TEXT,
    output      TEXT,
    error       TEXT,
    seq         INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER,
    UNIQUE (client_id, request_id)
  );
  CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
  CREATE INDEX IF NOT EXISTS jobs_finished_at ON jobs (finished_at);

  -- One row per change of a job, so a resuming watcher gets what it missed.
  CREATE TABLE IF NOT EXISTS job_events (
    job_id TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    record TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
  ) WITHOUT ROWID;
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

/** A `jobs` row as SQLite returns it; JSON columns are text, null stays SQL NULL. */
interface JobRow {
  id: string;
  client_id: string;
  request_id: string;
  tool: string;
  args: string;
  args_hash: string;
  status: JobStatus;
  progress: string | null;
  output: string | null;
  error: string | null;
  seq: number;
  attempts: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

function json(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function parse<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** Named parameters for the insert and update statements. */
function toParams(record: JobRecord) {
  return {
    id: record.id,
    client_id: record.clientId,
    request_id: record.requestId,
    tool: record.tool,
    args: JSON.stringify(record.args),
    args_hash: record.argsHash,
    status: record.status,
    progress: json(record.progress),
    output: json(record.output),
    error: json(record.error),
    seq: record.seq,
    attempts: record.attempts,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    finished_at: record.finishedAt,
  };
}

/** Every call builds a new object, so callers may mutate what they get. */
function toRecord(row: JobRow): JobRecord {
  return {
    id: row.id,
    clientId: row.client_id,
    requestId: row.request_id,
    tool: row.tool,
    args: JSON.parse(row.args) as JobRecord['args'],
    argsHash: row.args_hash,
    status: row.status,
    progress: parse(row.progress),
    output: parse(row.output),
    error: parse(row.error),
    seq: row.seq,
    attempts: row.attempts,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  };
}

/**
 * Nonces and jobs in one SQLite file (`SIGNET_STORE=sqlite:<path>`): the embedded default,
 * durable across restarts with no server to run. better-sqlite3 is synchronous, so each method
 * runs to completion before any other JavaScript does; transactions make the multi-statement
 * ones atomic against other processes sharing the file too.
 */
export class SqliteStore implements LocalStore {
  readonly description: string;
  private readonly db: Database.Database;
  // Prepared once: claim() runs on every request, and preparing costs more than running.
  private readonly stmts: ReturnType<typeof prepare>;
  private readonly createTx: (record: JobRecord) => { record: JobRecord; created: boolean };
  private readonly updateTx: (id: string, patch: JobPatch, now: number) => JobRecord | undefined;
  private lastBatchId: number;
  private batch: ClaimBatch | undefined;
  private readonly nonces = new NonceIndex();

  constructor(path: string) {
    this.description = `sqlite:${path}`;
    this.db = new Database(path);
    try {
      // First, so that a predecessor that is just exiting gets a moment to let go of the file.
      this.db.pragma('busy_timeout = 1000');
      // WAL: readers never block the writer. NORMAL is safe in WAL mode: a process crash loses
      // nothing; only a power cut can drop the last commits, and never corrupts the file.
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      // Checkpoints are where WAL mode syncs to disk; fewer, larger ones cost less per call.
      this.db.pragma('wal_autocheckpoint = 10000');
      // One server per file: its job engine recovers and runs the file's jobs, so a second
      // process must not (a job would run twice at once). The OS drops the lock when the
      // process dies, even by SIGKILL, so a restart is never locked out.
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.exec('BEGIN EXCLUSIVE; COMMIT');
      migrate(this.db);
      this.stmts = prepare(this.db);
    } catch (error) {
      this.db.close();
      if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
        throw new Error('the database is in use by another Signet server');
      }
      throw error;
    }

    // IMMEDIATE takes the write lock before the first read, so a concurrent writer in another
    // process makes us wait (busy_timeout) instead of failing mid-transaction.
    this.createTx = this.db.transaction((record: JobRecord) => {
      if (this.stmts.insertJob.run(toParams(record)).changes === 1) {
        this.stmts.insertEvent.run(record.id, record.seq, JSON.stringify(record));
        return { record: this.mustGet(record.id), created: true };
      }
      const existing = this.stmts.getJobByRequest.get(record.clientId, record.requestId);
      // Unreachable: the insert only skips on this (client_id, request_id) conflict.
      if (!existing) throw new Error(`no job for request ${record.requestId} after a conflict`);
      return { record: toRecord(existing), created: false };
    }).immediate;

    this.lastBatchId = this.stmts.lastBatchId.get()?.id ?? 0;
    this.loadNonces();

    this.updateTx = this.db.transaction((id: string, patch: JobPatch, now: number) => {
      const row = this.stmts.getJob.get(id);
      if (!row) return undefined;
      const record = toRecord(row);
      // A key that is present but undefined means "not given", as for any Partial.
      for (const [key, value] of Object.entries(patch)) {
        if (value !== undefined) Object.assign(record, { [key]: value });
      }
      record.seq += 1;
      record.updatedAt = now;
      this.stmts.updateJob.run(toParams(record));
      this.stmts.insertEvent.run(id, record.seq, JSON.stringify(record));
      // Re-read, so the caller gets exactly what is stored (and its own fresh copy).
      return this.mustGet(id);
    }).immediate;
  }

  /**
   * Group commit: the index answers at once, and the claims made while the event loop handles
   * one batch of sockets are written in one transaction, committed before any of them is
   * answered. A commit costs far more than an insert, so under load this is several times
   * cheaper per call than `claim`.
   */
  claimSoon(clientId: string, nonce: string, expiresAtMs: number): Promise<boolean> {
    const key = nonceKey(clientId, nonce);
    if (!this.nonces.claim(key, expiresAtMs)) return Promise.resolve(false);
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
      this.logNonces(batch.keys, batch.expires);
    } catch (error) {
      // Not recorded, so not spent: the same signed call may be retried.
      for (const key of batch.keys) this.nonces.release(key);
      batch.reject(error);
      return;
    }
    batch.resolve(true);
  };

  claim(clientId: string, nonce: string, expiresAtMs: number): boolean {
    const key = nonceKey(clientId, nonce);
    if (!this.nonces.claim(key, expiresAtMs)) return false;
    try {
      this.logNonces([key], [expiresAtMs]);
    } catch (error) {
      this.nonces.release(key);
      throw error;
    }
    return true;
  }

  private logNonces(keys: readonly NonceKey[], expiresAtMs: readonly number[]): void {
    const id = nextBatchId(this.lastBatchId, expiresAtMs);
    this.stmts.logNonces.run(id, encodeNonces(keys, expiresAtMs));
    this.lastBatchId = id;
  }

  pruneNonces(now: number): number {
    this.stmts.pruneNonces.run(batchIdFloor(now));
    return this.nonces.prune(now);
  }

  /** Reads the log into the index (start-up); what expired goes at the first prune. */
  private loadNonces(): void {
    for (const { keys } of this.stmts.readNonces.iterate()) {
      for (let at = 0; at + NONCE_RECORD <= keys.length; at += NONCE_RECORD) {
        const key = { hi: keys.readUInt32BE(at), lo: keys.readUInt32BE(at + 4) };
        this.nonces.claim(key, keys.readUInt32BE(at + 8) * 1000);
      }
    }
  }

  createOrGet(record: JobRecord): { record: JobRecord; created: boolean } {
    return this.createTx(record);
  }

  get(id: string): JobRecord | undefined {
    const row = this.stmts.getJob.get(id);
    return row && toRecord(row);
  }

  update(id: string, patch: JobPatch, now: number): JobRecord | undefined {
    return this.updateTx(id, patch, now);
  }

  eventsAfter(id: string, afterSeq: number): JobEvent[] {
    return this.stmts.eventsAfter
      .all(id, afterSeq)
      .map((row) => ({ seq: row.seq, record: JSON.parse(row.record) as JobRecord }));
  }

  listByStatus(statuses: readonly JobStatus[]): JobRecord[] {
    // One prepared statement for any number of statuses: the list goes in as a JSON array.
    return this.stmts.listByStatus.all(JSON.stringify(statuses)).map(toRecord);
  }

  deleteFinishedBefore(cutoff: number): number {
    // The job's events go with it (ON DELETE CASCADE); `changes` counts only the jobs.
    return this.stmts.deleteFinishedBefore.run(cutoff).changes;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private mustGet(id: string): JobRecord {
    const record = this.get(id);
    if (!record) throw new Error(`job ${id} vanished inside its own transaction`);
    return record;
  }
}

/** Creates the schema on a new file; refuses a file written by a newer version. */
function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `database schema version ${version} is newer than this build supports (${SCHEMA_VERSION})`,
    );
  }
  db.transaction(() => {
    db.exec(SCHEMA);
    // Older versions kept one row per nonce; carry them over, so none can be replayed.
    if (version === 1) {
      // Version 1: text keys.
      carryOverNonces(
        db,
        db.prepare<[], { client_id: string; nonce: string; expires_at: number }>(
          'SELECT client_id, nonce, expires_at FROM nonces',
        ),
        (row) => nonceKey(row.client_id, row.nonce),
      );
      db.exec('DROP TABLE nonces');
    }
    if (version === 2) {
      // Version 2: the same 64-bit keys, as signed integers.
      carryOverNonces(
        db,
        db
          .prepare<[], { hash: bigint; expires_at: bigint }>(
            'SELECT hash, expires_at FROM nonce_hashes',
          )
          .safeIntegers(true),
        (row) => {
          const unsigned = BigInt.asUintN(64, row.hash);
          return { hi: Number(unsigned >> 32n), lo: Number(unsigned & 0xffff_ffffn) };
        },
      );
      db.exec('DROP TABLE nonce_hashes');
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function carryOverNonces<R extends { expires_at: number | bigint }>(
  db: Database.Database,
  rows: Database.Statement<[], R>,
  keyOf: (row: R) => NonceKey,
): void {
  const insert = db.prepare('INSERT INTO nonce_batches (id, keys) VALUES (?, ?)');
  let lastId = 0;
  let keys: NonceKey[] = [];
  let expires: number[] = [];
  const flush = () => {
    if (keys.length > 0) {
      lastId = nextBatchId(lastId, expires);
      insert.run(lastId, encodeNonces(keys, expires));
    }
    keys = [];
    expires = [];
  };
  for (const row of rows.iterate()) {
    keys.push(keyOf(row));
    expires.push(Number(row.expires_at));
    if (keys.length === 4096) flush();
  }
  flush();
}

function prepare(db: Database.Database) {
  return {
    logNonces: db.prepare<[number, Buffer]>('INSERT INTO nonce_batches (id, keys) VALUES (?, ?)'),
    lastBatchId: db.prepare<[], { id: number }>('SELECT max(id) AS id FROM nonce_batches'),
    readNonces: db.prepare<[], { keys: Buffer }>('SELECT keys FROM nonce_batches'),
    pruneNonces: db.prepare<[number]>('DELETE FROM nonce_batches WHERE id < ?'),
    insertJob: db.prepare<[ReturnType<typeof toParams>]>(
      `INSERT INTO jobs (id, client_id, request_id, tool, args, args_hash, status, progress,
         output, error, seq, attempts, created_at, updated_at, finished_at)
       VALUES (@id, @client_id, @request_id, @tool, @args, @args_hash, @status, @progress,
         @output, @error, @seq, @attempts, @created_at, @updated_at, @finished_at)
       ON CONFLICT (client_id, request_id) DO NOTHING`,
    ),
    updateJob: db.prepare<[ReturnType<typeof toParams>]>(
      `UPDATE jobs SET status = @status, progress = @progress, output = @output, error = @error,
         seq = @seq, attempts = @attempts, updated_at = @updated_at, finished_at = @finished_at
       WHERE id = @id`,
    ),
    getJob: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE id = ?'),
    getJobByRequest: db.prepare<[string, string], JobRow>(
      'SELECT * FROM jobs WHERE client_id = ? AND request_id = ?',
    ),
    listByStatus: db.prepare<[string], JobRow>(
      `SELECT * FROM jobs WHERE status IN (SELECT value FROM json_each(?))
       ORDER BY created_at, rowid`,
    ),
    deleteFinishedBefore: db.prepare<[number]>('DELETE FROM jobs WHERE finished_at < ?'),
    insertEvent: db.prepare<[string, number, string]>(
      'INSERT INTO job_events (job_id, seq, record) VALUES (?, ?, ?)',
    ),
    eventsAfter: db.prepare<[string, number], { seq: number; record: string }>(
      'SELECT seq, record FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq',
    ),
  };
}

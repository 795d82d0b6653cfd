import type { JobStatus } from '@signet/protocol';
import type Database from 'better-sqlite3';
import type { JobEvent, JobPatch, JobRecord, JobStore } from './types.ts';

export const JOB_SCHEMA = `
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
 * The jobs of a SQLite file and their changes. better-sqlite3 is synchronous, so each method runs
 * to completion before any other JavaScript does; transactions make the multi-statement ones
 * atomic against other processes sharing the file too.
 */
export class SqliteJobTables implements JobStore {
  private readonly stmts: ReturnType<typeof prepare>;
  private readonly createTx: (record: JobRecord) => { record: JobRecord; created: boolean };
  private readonly updateTx: (id: string, patch: JobPatch, now: number) => JobRecord | undefined;

  constructor(db: Database.Database) {
    this.stmts = prepare(db);
    // IMMEDIATE takes the write lock before the first read, so a concurrent writer in another
    // process makes us wait (busy_timeout) instead of failing mid-transaction.
    this.createTx = db.transaction((record: JobRecord) => {
      if (this.stmts.insertJob.run(toParams(record)).changes === 1) {
        this.stmts.insertEvent.run(record.id, record.seq, JSON.stringify(record));
        return { record: this.mustGet(record.id), created: true };
      }
      const existing = this.stmts.getJobByRequest.get(record.clientId, record.requestId);
      // Unreachable: the insert only skips on this (client_id, request_id) conflict.
      if (!existing) throw new Error(`no job for request ${record.requestId} after a conflict`);
      return { record: toRecord(existing), created: false };
    }).immediate;

    this.updateTx = db.transaction((id: string, patch: JobPatch, now: number) => {
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

  createOrGet(record: JobRecord): { record: JobRecord; created: boolean } {
    return this.createTx(record);
  }

  get(id: string): JobRecord | undefined {
    const row = this.stmts.getJob.get(id);
    return row && toRecord(row);
  }

  findByRequest(clientId: string, requestId: string): JobRecord | undefined {
    const row = this.stmts.getJobByRequest.get(clientId, requestId);
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

  private mustGet(id: string): JobRecord {
    const record = this.get(id);
    if (!record) throw new Error(`job ${id} vanished inside its own transaction`);
    return record;
  }
}

function prepare(db: Database.Database) {
  return {
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

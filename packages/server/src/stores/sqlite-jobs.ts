import type { JobStatus } from '@signet/protocol';
import type Database from 'better-sqlite3';
import { deltaOf, eventOf, type JobDelta } from './job-delta.ts';
import { deepFreeze } from './shared-values.ts';
import type { JobEvent, JobPatch, JobRecord, JobStore } from './types.ts';

/**
 * A job's args, written once when it is created, and its output, once when it is done: apart
 * from `jobs`, so that a change (a progress report) does not write them again (issue 21, V3).
 */
export const JOB_PAYLOAD_SCHEMA = `
  CREATE TABLE IF NOT EXISTS job_args (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    args   TEXT NOT NULL
  );
  CREATE TABLE IF NOT EXISTS job_outputs (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    output TEXT NOT NULL
  );
`;

/**
 * One row per change of a job, so a resuming watcher gets what it missed: the change's delta
 * (see job-delta.ts), its record rebuilt from the job's row, args and output.
 */
export const JOB_EVENT_SCHEMA = `
  CREATE TABLE IF NOT EXISTS job_events (
    job_id      TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    progress    TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER,
    PRIMARY KEY (job_id, seq)
  ) WITHOUT ROWID;
`;

export const JOB_SCHEMA = `
  -- A job's current state: every change rewrites this row, so it holds nothing large.
  CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT    PRIMARY KEY,
    client_id   TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    tool        TEXT    NOT NULL,
    args_hash   TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    progress    TEXT,
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
${JOB_PAYLOAD_SCHEMA}
${JOB_EVENT_SCHEMA}`;

/** A job as SQLite returns it (its row, args and output); JSON columns are text, null is NULL. */
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

/** A `job_events` row. */
interface EventRow {
  seq: number;
  status: JobStatus;
  progress: string | null;
  error: string | null;
  attempts: number;
  updated_at: number;
  finished_at: number | null;
}

function json(value: unknown): string | null {
  return value === null || value === undefined ? null : JSON.stringify(value);
}

function parse<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/** Named parameters for the `jobs` statements (no args, no output: see JOB_PAYLOAD_SCHEMA). */
function toParams(record: JobRecord) {
  return {
    id: record.id,
    client_id: record.clientId,
    request_id: record.requestId,
    tool: record.tool,
    args_hash: record.argsHash,
    status: record.status,
    progress: json(record.progress),
    error: json(record.error),
    seq: record.seq,
    attempts: record.attempts,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    finished_at: record.finishedAt,
  };
}

/** Named parameters for a `job_events` row: the record's delta. */
function toEventParams(id: string, delta: JobDelta) {
  return {
    job_id: id,
    seq: delta.seq,
    status: delta.status,
    progress: json(delta.progress),
    error: json(delta.error),
    attempts: delta.attempts,
    updated_at: delta.updatedAt,
    finished_at: delta.finishedAt,
  };
}

/**
 * Every call builds a new object, so callers may change its fields; `output`, if given, is the
 * row's output already parsed (frozen, and shared).
 */
function toRecord(row: JobRow, output?: JobRecord['output']): JobRecord {
  return {
    id: row.id,
    clientId: row.client_id,
    requestId: row.request_id,
    tool: row.tool,
    args: JSON.parse(row.args) as JobRecord['args'],
    argsHash: row.args_hash,
    status: row.status,
    progress: parse(row.progress),
    output: output !== undefined ? output : parse(row.output),
    error: parse(row.error),
    seq: row.seq,
    attempts: row.attempts,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  };
}

function toDelta(row: EventRow): JobDelta {
  return {
    seq: row.seq,
    status: row.status,
    progress: parse(row.progress),
    error: parse(row.error),
    attempts: row.attempts,
    updatedAt: row.updated_at,
    finishedAt: row.finished_at,
  };
}

/**
 * The jobs of a SQLite file and their changes. better-sqlite3 is synchronous, so each method runs
 * to completion before any other JavaScript does; transactions make the multi-statement ones
 * atomic against other processes sharing the file too.
 */
/** How many finished jobs' parsed outputs are kept for sharing (see `outputOf`). */
const OUTPUTS_CACHED = 16;

export class SqliteJobTables implements JobStore {
  private readonly stmts: ReturnType<typeof prepare>;
  private readonly outputs = new Map<string, Record<string, unknown>>();
  private readonly createTx: (record: JobRecord) => { record: JobRecord; created: boolean };
  private readonly updateTx: (id: string, patch: JobPatch, now: number) => JobRecord | undefined;

  constructor(db: Database.Database) {
    this.stmts = prepare(db);
    // IMMEDIATE takes the write lock before the first read, so a concurrent writer in another
    // process makes us wait (busy_timeout) instead of failing mid-transaction.
    this.createTx = db.transaction((record: JobRecord) => {
      if (this.stmts.insertJob.run(toParams(record)).changes === 1) {
        this.stmts.insertArgs.run(record.id, JSON.stringify(record.args));
        if (record.output !== null) {
          this.stmts.putOutput.run(record.id, JSON.stringify(record.output));
        }
        this.stmts.insertEvent.run(toEventParams(record.id, deltaOf(record)));
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
      // The output is written only by the change that gives it (a job's last: `done`).
      if (patch.output !== undefined) {
        this.outputs.delete(id);
        if (patch.output === null) this.stmts.deleteOutput.run(id);
        else this.stmts.putOutput.run(id, JSON.stringify(patch.output));
      }
      this.stmts.insertEvent.run(toEventParams(id, deltaOf(record)));
      // Re-read, so the caller gets exactly what is stored (and its own fresh copy).
      return this.mustGet(id);
    }).immediate;
  }

  createOrGet(record: JobRecord): { record: JobRecord; created: boolean } {
    return this.createTx(record);
  }

  get(id: string): JobRecord | undefined {
    const row = this.stmts.getJob.get(id);
    return row && toRecord(row, this.outputOf(row));
  }

  /**
   * A finished job's output, parsed once and shared (frozen) by every read of it while it is
   * among the last OUTPUTS_CACHED read: the watchers of one job hold one copy (issue 21, V2).
   */
  private outputOf(row: JobRow): JobRecord['output'] {
    if (row.output === null) return null;
    let output = this.outputs.get(row.id);
    if (output === undefined) {
      output = deepFreeze(JSON.parse(row.output) as Record<string, unknown>);
      if (this.outputs.size >= OUTPUTS_CACHED) {
        this.outputs.delete(this.outputs.keys().next().value!);
      }
      this.outputs.set(row.id, output);
    }
    return output;
  }

  findByRequest(clientId: string, requestId: string): JobRecord | undefined {
    const row = this.stmts.getJobByRequest.get(clientId, requestId);
    return row && toRecord(row);
  }

  update(id: string, patch: JobPatch, now: number): JobRecord | undefined {
    return this.updateTx(id, patch, now);
  }

  eventsAfter(id: string, afterSeq: number): JobEvent[] {
    const rows = this.stmts.eventsAfter.all(id, afterSeq);
    if (rows.length === 0) return [];
    const job = this.get(id);
    if (!job) return [];
    return rows.map((row) => eventOf(job, toDelta(row)));
  }

  listByStatus(statuses: readonly JobStatus[]): JobRecord[] {
    // One prepared statement for any number of statuses: the list goes in as a JSON array.
    return this.stmts.listByStatus.all(JSON.stringify(statuses)).map((row) => toRecord(row));
  }

  deleteFinishedBefore(cutoff: number): number {
    // The job's args, output and events go with it (ON DELETE CASCADE); `changes` counts only
    // the jobs.
    return this.stmts.deleteFinishedBefore.run(cutoff).changes;
  }

  private mustGet(id: string): JobRecord {
    const record = this.get(id);
    if (!record) throw new Error(`job ${id} vanished inside its own transaction`);
    return record;
  }
}

/** A job's row with its args and output, as `JobRow`. */
const SELECT_JOB = `
  SELECT jobs.*, job_args.args AS args, job_outputs.output AS output FROM jobs
  JOIN job_args ON job_args.job_id = jobs.id
  LEFT JOIN job_outputs ON job_outputs.job_id = jobs.id`;

function prepare(db: Database.Database) {
  return {
    insertJob: db.prepare<[ReturnType<typeof toParams>]>(
      `INSERT INTO jobs (id, client_id, request_id, tool, args_hash, status, progress, error,
         seq, attempts, created_at, updated_at, finished_at)
       VALUES (@id, @client_id, @request_id, @tool, @args_hash, @status, @progress, @error,
         @seq, @attempts, @created_at, @updated_at, @finished_at)
       ON CONFLICT (client_id, request_id) DO NOTHING`,
    ),
    insertArgs: db.prepare<[string, string]>('INSERT INTO job_args (job_id, args) VALUES (?, ?)'),
    putOutput: db.prepare<[string, string]>(
      `INSERT INTO job_outputs (job_id, output) VALUES (?, ?)
       ON CONFLICT (job_id) DO UPDATE SET output = excluded.output`,
    ),
    deleteOutput: db.prepare<[string]>('DELETE FROM job_outputs WHERE job_id = ?'),
    updateJob: db.prepare<[ReturnType<typeof toParams>]>(
      `UPDATE jobs SET status = @status, progress = @progress, error = @error, seq = @seq,
         attempts = @attempts, updated_at = @updated_at, finished_at = @finished_at
       WHERE id = @id`,
    ),
    getJob: db.prepare<[string], JobRow>(`${SELECT_JOB} WHERE jobs.id = ?`),
    getJobByRequest: db.prepare<[string, string], JobRow>(
      `${SELECT_JOB} WHERE jobs.client_id = ? AND jobs.request_id = ?`,
    ),
    listByStatus: db.prepare<[string], JobRow>(
      `${SELECT_JOB} WHERE jobs.status IN (SELECT value FROM json_each(?))
       ORDER BY jobs.created_at, jobs.rowid`,
    ),
    deleteFinishedBefore: db.prepare<[number]>('DELETE FROM jobs WHERE finished_at < ?'),
    insertEvent: db.prepare<[ReturnType<typeof toEventParams>]>(
      `INSERT INTO job_events (job_id, seq, status, progress, error, attempts, updated_at,
         finished_at)
       VALUES (@job_id, @seq, @status, @progress, @error, @attempts, @updated_at, @finished_at)`,
    ),
    eventsAfter: db.prepare<[string, number], EventRow>(
      `SELECT seq, status, progress, error, attempts, updated_at, finished_at FROM job_events
       WHERE job_id = ? AND seq > ? ORDER BY seq`,
    ),
  };
}

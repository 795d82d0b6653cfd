import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import type { JobStatus } from '@signet/protocol';
import type BetterSqlite3 from 'better-sqlite3';
import type { Backend, BackendContext, RunningBackend } from '../backend.ts';
import { requirePeer } from '../peers.ts';
import { openEmbedded } from './embedded.ts';
import { JOB_SCHEMA, SqliteJobTables } from './sqlite-jobs.ts';
import { MIGRATIONS } from './sqlite-migrations.ts';
import { NONCE_SCHEMA, SqliteNonceLog } from './sqlite-nonces.ts';
import type { JobEvent, JobPatch, JobRecord, LocalStore } from './types.ts';

// An optional peer dependency: loaded here, so only users of the SQLite store need it.
const Database = requirePeer<typeof BetterSqlite3>('better-sqlite3', '@signet/server/sqlite');

/** The schema of the first published version; older ones only ever existed in development. */
const FIRST_SCHEMA_VERSION = 3;

/** Bump when the schema changes, and add the step from the previous version to `MIGRATIONS`. */
const SCHEMA_VERSION = 4;

/**
 * Nonces and jobs in one SQLite file (`SIGNET_STORE=sqlite:<path>`): the embedded default,
 * durable across restarts with no server to run. The file is opened when the server opens its
 * store, and held (exclusively) until the server closes.
 */
export class SqliteStore implements Backend {
  constructor(readonly path: string) {}

  async open(ctx: BackendContext): Promise<RunningBackend> {
    return openEmbedded(new SqliteFile(this.path), ctx);
  }
}

/** An open SQLite store: what a server on `SqliteStore` runs on, held until `close`. */
export class SqliteFile implements LocalStore {
  readonly description: string;
  private readonly db: BetterSqlite3.Database;
  private readonly nonces: SqliteNonceLog;
  private readonly jobs: SqliteJobTables;

  constructor(path: string) {
    this.description = `sqlite:${path}`;
    ownerOnly(path, true);
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
      // (Again: SQLite made the -wal and -shm files by now.)
      ownerOnly(path, false);
      this.nonces = new SqliteNonceLog(this.db);
      this.jobs = new SqliteJobTables(this.db);
    } catch (error) {
      this.db.close();
      if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
        throw new Error('the database is in use by another Signet server');
      }
      throw error;
    }
  }

  claimSoon(clientId: string, nonce: string, expiresAtMs: number): Promise<boolean> {
    return this.nonces.claimSoon(clientId, nonce, expiresAtMs);
  }

  claim(clientId: string, nonce: string, expiresAtMs: number): boolean {
    return this.nonces.claim(clientId, nonce, expiresAtMs);
  }

  pruneNonces(now: number): number {
    return this.nonces.prune(now);
  }

  nonceCount(): number {
    return this.nonces.size;
  }

  createOrGet(record: JobRecord): { record: JobRecord; created: boolean } {
    return this.jobs.createOrGet(record);
  }

  get(id: string): JobRecord | undefined {
    return this.jobs.get(id);
  }

  findByRequest(clientId: string, requestId: string): JobRecord | undefined {
    return this.jobs.findByRequest(clientId, requestId);
  }

  update(id: string, patch: JobPatch, now: number): JobRecord | undefined {
    return this.jobs.update(id, patch, now);
  }

  eventsAfter(id: string, afterSeq: number): JobEvent[] {
    return this.jobs.eventsAfter(id, afterSeq);
  }

  listByStatus(statuses: readonly JobStatus[]): JobRecord[] {
    return this.jobs.listByStatus(statuses);
  }

  deleteFinishedBefore(cutoff: number): number {
    return this.jobs.deleteFinishedBefore(cutoff);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** The files of the database at `path`: what it holds is the server's alone. */
const OWNER_ONLY = 0o600;

/**
 * Makes the database file (created so when `create`, before SQLite would create it with the
 * umask's mode) and its -wal, -shm and -journal files readable by their owner only, whatever
 * mode an earlier run or an older build left them with (issue 21, W12).
 */
function ownerOnly(path: string, create: boolean): void {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) return;
  if (create) closeSync(openSync(path, 'a', OWNER_ONLY));
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    if (existsSync(file)) chmodSync(file, OWNER_ONLY);
  }
}

/**
 * Creates the schema on a new file, or upgrades a file of an older published schema step by
 * step; refuses a file of a development-only or of a newer schema.
 */
function migrate(db: BetterSqlite3.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(
      `database schema version ${version} is newer than this build supports (${SCHEMA_VERSION})`,
    );
  }
  if (version > 0 && version < FIRST_SCHEMA_VERSION) {
    throw new Error(
      `database schema version ${version} is from an unreleased development build and cannot be ` +
        'opened: delete the file, or point the store at a new one',
    );
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    if (version === 0) {
      // A new file gets the current schema at once.
      db.exec(NONCE_SCHEMA);
      db.exec(JOB_SCHEMA);
    } else {
      let at = version;
      for (const step of MIGRATIONS) {
        if (step.from !== at) continue;
        step.run(db);
        at = step.to;
      }
      if (at !== SCHEMA_VERSION) {
        throw new Error(`no migration from database schema version ${at} to ${SCHEMA_VERSION}`);
      }
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

// A file of schema version 3 (the first published one: whole records in the change log, args and
// output in the job's row) opens in a build of version 4 and keeps its nonces and jobs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { newJobRecord } from '../jobs/record.ts';
import { SqliteFile } from './sqlite.ts';
import type { JobRecord } from './types.ts';

const dir = mkdtempSync(join(tmpdir(), 'signet-migration-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The job tables of schema version 3, as that build created them. */
const JOB_SCHEMA_V3 = `
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY, client_id TEXT NOT NULL, request_id TEXT NOT NULL, tool TEXT NOT NULL,
    args TEXT NOT NULL, args_hash TEXT NOT NULL, status TEXT NOT NULL, progress TEXT,
    output TEXT, error TEXT, seq INTEGER NOT NULL, attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER,
    UNIQUE (client_id, request_id)
  );
  CREATE INDEX jobs_status ON jobs (status);
  CREATE INDEX jobs_finished_at ON jobs (finished_at);
  CREATE TABLE job_events (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (job_id, seq)
  ) WITHOUT ROWID;
`;

function base(id: string): JobRecord {
  return newJobRecord(
    id,
    {
      clientId: 'client-a',
      requestId: `req-${id}`,
      tool: 'start_long_task',
      args: { seconds: 2, payload: { text: `args of ${id}`, nested: [1, null] } },
      argsHash: `hash-${id}`,
    },
    1_000,
  );
}

/** Each job's history, as version 3 wrote it: every change a whole record. */
function histories(): JobRecord[][] {
  const done = base('done-job');
  const doneRunning = { ...done, status: 'running' as const, attempts: 1, seq: 1, updatedAt: 2 };
  const doneHalf = { ...doneRunning, progress: { current: 1, total: 2 }, seq: 2, updatedAt: 3 };
  const doneEnd = {
    ...doneHalf,
    status: 'done' as const,
    output: { echoed: 'é€😀' },
    seq: 3,
    updatedAt: 4,
    finishedAt: 4,
  };
  const running = base('running-job');
  const runningNow = {
    ...running,
    status: 'running' as const,
    attempts: 1,
    progress: { current: 1, message: 'm' },
    seq: 1,
    updatedAt: 5,
  };
  const failed = base('failed-job');
  const failedEnd = {
    ...failed,
    status: 'error' as const,
    error: { code: 'TOOL_FAILED' as const, message: 'no' },
    seq: 1,
    updatedAt: 6,
    finishedAt: 6,
  };
  return [
    [done, doneRunning, doneHalf, doneEnd],
    [running, runningNow],
    [failed, failedEnd],
  ];
}

/** A version-3 file with the jobs of `histories()` and a claimed nonce. */
function versionThreeFile(): string {
  const path = join(dir, `v3-${Math.random().toString(36).slice(2)}.db`);
  // The nonce log is the same in both versions: the current build writes it.
  const current = new SqliteFile(path);
  current.claim('client-a', 'nonce-0000000001', Date.now() + 600_000);
  current.close();
  const db = new Database(path);
  db.exec('DROP TABLE job_events; DROP TABLE job_outputs; DROP TABLE job_args; DROP TABLE jobs');
  db.exec(JOB_SCHEMA_V3);
  const json = (value: unknown) => (value === null ? null : JSON.stringify(value));
  for (const history of histories()) {
    const last = history.at(-1)!;
    db.prepare('INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      last.id,
      last.clientId,
      last.requestId,
      last.tool,
      JSON.stringify(last.args),
      last.argsHash,
      last.status,
      json(last.progress),
      json(last.output),
      json(last.error),
      last.seq,
      last.attempts,
      last.createdAt,
      last.updatedAt,
      last.finishedAt,
    );
    for (const record of history) {
      db.prepare('INSERT INTO job_events VALUES (?, ?, ?)').run(
        record.id,
        record.seq,
        JSON.stringify(record),
      );
    }
  }
  db.pragma('user_version = 3');
  db.close();
  return path;
}

describe('SqliteFile migrates schema version 3 to 4', () => {
  it('keeps every job, its changes and the nonces, and the jobs go on', () => {
    const path = versionThreeFile();
    const store = new SqliteFile(path);
    try {
      for (const history of histories()) {
        const last = history.at(-1)!;
        expect(store.get(last.id)).toEqual(last);
        expect(store.findByRequest(last.clientId, last.requestId)).toEqual(last);
        expect(store.eventsAfter(last.id, -1).map((event) => event.record)).toEqual(history);
      }
      expect(store.claim('client-a', 'nonce-0000000001', Date.now() + 600_000)).toBe(false);
      expect(store.listByStatus(['running']).map((record) => record.id)).toEqual(['running-job']);

      // The running job goes on, and ends, in the new schema.
      store.update('running-job', { progress: { current: 2 } }, 7);
      const end = store.update(
        'running-job',
        { status: 'done', output: { n: 2 }, finishedAt: 8 },
        8,
      )!;
      expect(end).toMatchObject({ status: 'done', output: { n: 2 }, seq: 3 });
      expect(store.eventsAfter('running-job', 1).map((event) => event.record.output)).toEqual([
        null,
        { n: 2 },
      ]);
      // Deleting a finished job deletes its args, output and changes too.
      expect(store.deleteFinishedBefore(5)).toBe(1);
      expect(store.get('done-job')).toBeUndefined();
    } finally {
      store.close();
    }

    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(4);
      const columns = (table: string) =>
        db
          .prepare<[string], { name: string }>('SELECT name FROM pragma_table_info(?)')
          .all(table)
          .map((column) => column.name);
      expect(columns('jobs')).not.toContain('args');
      expect(columns('jobs')).not.toContain('output');
      expect(columns('job_events')).not.toContain('record');
      const left = db.prepare<[], { n: number }>(
        `SELECT (SELECT count(*) FROM job_args WHERE job_id = 'done-job')
              + (SELECT count(*) FROM job_outputs WHERE job_id = 'done-job')
              + (SELECT count(*) FROM job_events WHERE job_id = 'done-job') AS n`,
      );
      expect(left.get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });

  it('opens a migrated file again as it is', () => {
    const path = versionThreeFile();
    new SqliteFile(path).close();
    const again = new SqliteFile(path);
    try {
      expect(again.get('done-job')).toEqual(histories()[0]!.at(-1));
    } finally {
      again.close();
    }
  });
});

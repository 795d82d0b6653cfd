import type BetterSqlite3 from 'better-sqlite3';
import { JOB_EVENT_SCHEMA, JOB_PAYLOAD_SCHEMA } from './sqlite-jobs.ts';

/** Upgrades a file from schema version `from` to `to`, inside the migration's transaction. */
export interface Migration {
  from: number;
  to: number;
  run(db: BetterSqlite3.Database): void;
}

/**
 * 3 → 4: a job's args and output move out of its row, written once each, and its change log
 * keeps deltas instead of whole records (issue 21, V3: one 0.88 MB start grew a version-3 file
 * by ~30 MB, its args written again with every progress report).
 */
const deltasAndPayloads: Migration = {
  from: 3,
  to: 4,
  run(db) {
    db.exec(`
      ${JOB_PAYLOAD_SCHEMA}
      INSERT INTO job_args (job_id, args) SELECT id, args FROM jobs;
      INSERT INTO job_outputs (job_id, output) SELECT id, output FROM jobs
        WHERE output IS NOT NULL;

      ALTER TABLE job_events RENAME TO job_events_v3;
      ${JOB_EVENT_SCHEMA}
      INSERT INTO job_events (job_id, seq, status, progress, error, attempts, updated_at,
          finished_at)
        SELECT job_id, seq, json_extract(record, '$.status'), json_extract(record, '$.progress'),
          json_extract(record, '$.error'), coalesce(json_extract(record, '$.attempts'), 0),
          coalesce(json_extract(record, '$.updatedAt'), 0), json_extract(record, '$.finishedAt')
        FROM job_events_v3;
      DROP TABLE job_events_v3;

      ALTER TABLE jobs DROP COLUMN args;
      ALTER TABLE jobs DROP COLUMN output;
    `);
  },
};

/** The steps between published schema versions, oldest first. */
export const MIGRATIONS: readonly Migration[] = [deltasAndPayloads];

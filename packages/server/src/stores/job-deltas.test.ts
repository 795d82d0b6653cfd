// A job's change log keeps deltas (issue 21, V3): its args and output are stored once, and
// eventsAfter rebuilds each change's record from the job and the delta.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newJobRecord } from '../jobs/record.ts';
import { MemoryStore } from './memory.ts';
import { SqliteFile } from './sqlite.ts';
import type { JobRecord, LocalStore } from './types.ts';

const dir = mkdtempSync(join(tmpdir(), 'signet-deltas-'));
let files = 0;
const freshPath = () => join(dir, `store-${++files}.db`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A job whose args are `argsBytes` long (about). */
function job(argsBytes = 100): JobRecord {
  const n = ++files;
  return newJobRecord(
    `job-${n}`,
    {
      clientId: 'client-a',
      requestId: `req-${n}`,
      tool: 'start_long_task',
      args: { seconds: 3, payload: { blob: 'a'.repeat(argsBytes) } },
      argsHash: `hash-${n}`,
    },
    1_000,
  );
}

describe.each([
  { name: 'MemoryStore', open: (): LocalStore => new MemoryStore() },
  { name: 'SqliteFile', open: (): LocalStore => new SqliteFile(freshPath()) },
])('$name rebuilds change records from deltas', ({ open }) => {
  let store: LocalStore;
  beforeEach(() => {
    store = open();
  });
  afterEach(() => store.close());

  it('gives every change its own state, the args, and the output only when done', () => {
    const record = job();
    store.createOrGet(record);
    const running = store.update(record.id, { status: 'running', attempts: 1 }, 2_000)!;
    const half = store.update(record.id, { progress: { current: 1, total: 2 } }, 3_000)!;
    const output = { echoed: { deep: [1, null, 'x'] } };
    const done = store.update(
      record.id,
      { status: 'done', output, progress: { current: 2, total: 2 }, finishedAt: 4_000 },
      4_000,
    )!;

    const events = store.eventsAfter(record.id, -1);
    expect(events.map((event) => event.record)).toEqual([record, running, half, done]);
    expect(events.map((event) => event.record.output)).toEqual([null, null, null, output]);
    for (const event of events) expect(event.record.args).toEqual(record.args);
    expect(store.eventsAfter(record.id, 1).map((event) => event.record)).toEqual([half, done]);
  });

  it('rebuilds an error and a cancel, which carry no output', () => {
    const failed = job();
    store.createOrGet(failed);
    const error = { code: 'TOOL_FAILED' as const, message: 'no' };
    const ended = store.update(failed.id, { status: 'error', error, finishedAt: 5 }, 5)!;
    expect(store.eventsAfter(failed.id, 0).map((event) => event.record)).toEqual([ended]);

    const cancelled = job();
    store.createOrGet(cancelled);
    store.update(cancelled.id, { progress: { current: 1, message: 'm' } }, 6);
    const end = store.update(cancelled.id, { status: 'cancelled', finishedAt: 7 }, 7)!;
    expect(end.progress).toEqual({ current: 1, message: 'm' });
    expect(store.eventsAfter(cancelled.id, 1).map((event) => event.record)).toEqual([end]);
  });

  it('has no events for an unknown or deleted job', () => {
    const record = job();
    store.createOrGet(record);
    store.update(record.id, { status: 'cancelled', finishedAt: 10 }, 10);
    expect(store.deleteFinishedBefore(11)).toBe(1);
    expect(store.eventsAfter(record.id, -1)).toEqual([]);
    expect(store.eventsAfter('nope', -1)).toEqual([]);
  });
});

describe('SqliteFile stores args and output once', () => {
  it('keeps no args or output in the change log, whatever the number of changes', () => {
    const path = freshPath();
    const store = new SqliteFile(path);
    const record = job(200_000);
    store.createOrGet(record);
    const before = filesSize(path);
    store.update(record.id, { status: 'running', attempts: 1 }, 2_000);
    for (let i = 1; i <= 20; i++) store.update(record.id, { progress: { current: i } }, 2_000 + i);
    const output = { blob: 'b'.repeat(200_000) };
    store.update(record.id, { status: 'done', output, finishedAt: 3_000 }, 3_000);
    // 21 changes and the output: about the output once, not args × 22 (4.4 MB before).
    expect(filesSize(path) - before).toBeLessThan(600_000);
    expect(store.eventsAfter(record.id, 21)[0]!.record.output).toEqual(output);
    store.close();

    const db = new Database(path, { readonly: true });
    try {
      const columns = db.prepare<[], { name: string }>(
        "SELECT name FROM pragma_table_info('job_events')",
      );
      expect(columns.all().map((column) => column.name)).not.toContain('record');
      const largest = db
        .prepare<[], { n: number }>('SELECT max(length(progress)) AS n FROM job_events')
        .get();
      expect(largest!.n).toBeLessThan(100);
    } finally {
      db.close();
    }
  });
});

describe('MemoryStore keeps args once', () => {
  it('holds about the args once, whatever the number of changes', () => {
    // A full collection before each reading, so only what the store holds is counted.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const store = new MemoryStore();
    const record = job(1_000_000);
    gc();
    const before = process.memoryUsage().heapUsed;
    store.createOrGet(record);
    for (let i = 1; i <= 20; i++) store.update(record.id, { progress: { current: i } }, 2_000 + i);
    gc();
    // A clone of the whole record per change held ~21 MB here.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(5_000_000);
    expect(store.eventsAfter(record.id, 19).map((event) => event.record.progress)).toEqual([
      { current: 20 },
    ]);
  });
});

/** The database and its WAL, as they are on disk. */
function filesSize(path: string): number {
  return [path, `${path}-wal`]
    .filter((file) => existsSync(file))
    .reduce((sum, file) => sum + statSync(file).size, 0);
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from './memory.ts';
import { SqliteFile } from './sqlite.ts';
import type { JobRecord, LocalStore } from './types.ts';

const dir = mkdtempSync(join(tmpdir(), 'signet-store-'));
let files = 0;
const freshPath = () => join(dir, `store-${++files}.db`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const factories: { name: string; open: () => LocalStore }[] = [
  { name: 'MemoryStore', open: () => new MemoryStore() },
  { name: 'SqliteFile', open: () => new SqliteFile(freshPath()) },
];

let ids = 0;
function job(overrides: Partial<JobRecord> = {}): JobRecord {
  const n = ++ids;
  return {
    id: `job-${n}`,
    clientId: 'client-a',
    requestId: `req-${n}`,
    tool: 'start_long_task',
    args: { seconds: 1, payload: { nested: [1, 'two', null, { three: true }] } },
    argsHash: `hash-${n}`,
    status: 'queued',
    progress: null,
    output: null,
    error: null,
    seq: 0,
    attempts: 0,
    createdAt: 1_000 + n,
    updatedAt: 1_000 + n,
    finishedAt: null,
    ...overrides,
  };
}

describe.each(factories)('$name conforms to LocalStore', ({ open }) => {
  let store: LocalStore;
  beforeEach(() => {
    store = open();
  });
  afterEach(() => store.close());

  describe('nonces', () => {
    it('accepts a nonce once, then refuses it', () => {
      expect(store.claim('client-a', 'nonce-0000000001', 10_000)).toBe(true);
      expect(store.claim('client-a', 'nonce-0000000001', 10_000)).toBe(false);
      expect(store.claim('client-a', 'nonce-0000000001', 99_000)).toBe(false);
    });

    it('keeps nonces apart per client', () => {
      expect(store.claim('client-a', 'nonce-0000000001', 10_000)).toBe(true);
      expect(store.claim('client-b', 'nonce-0000000001', 10_000)).toBe(true);
    });

    it('refuses an expired nonce until it is pruned', () => {
      expect(store.claim('client-a', 'nonce-0000000001', 100_000)).toBe(true);
      expect(store.claim('client-a', 'nonce-0000000001', 900_000)).toBe(false);
      expect(store.pruneNonces(200_000)).toBe(1);
      expect(store.claim('client-a', 'nonce-0000000001', 900_000)).toBe(true);
    });

    // Expiry is kept to the whole second, rounded up: a nonce may be remembered a little
    // longer than asked, never shorter.
    it('prunes only the nonces that expired before now', () => {
      store.claim('client-a', 'old-nonce-000001', 100_000);
      store.claim('client-a', 'edge-nonce-00001', 149_001);
      store.claim('client-b', 'new-nonce-000001', 200_000);
      expect(store.pruneNonces(150_000)).toBe(1);
      expect(store.claim('client-a', 'old-nonce-000001', 900_000)).toBe(true);
      expect(store.claim('client-a', 'edge-nonce-00001', 900_000)).toBe(false);
      expect(store.claim('client-b', 'new-nonce-000001', 900_000)).toBe(false);
      expect(store.pruneNonces(150_000)).toBe(0);
    });

    it('keeps every one of many nonces apart, across growth and pruning', () => {
      const n = 10_000;
      for (let i = 0; i < n; i++) {
        expect(store.claim('client-a', `nonce-${i}-padding-xx`, i < n / 2 ? 1_000 : 900_000)).toBe(
          true,
        );
      }
      expect(store.pruneNonces(100_000)).toBe(n / 2);
      let refused = 0;
      for (let i = 0; i < n; i++) {
        if (!store.claim('client-a', `nonce-${i}-padding-xx`, 900_000)) refused++;
      }
      // The pruned half is free again; the live half is still refused.
      expect(refused).toBe(n / 2);
    });
  });

  describe('jobs', () => {
    it('creates a job once per (client, request_id) and returns it again', () => {
      const first = job({ requestId: 'req-x' });
      const created = store.createOrGet(first);
      expect(created).toEqual({ record: first, created: true });

      const retry = store.createOrGet(job({ requestId: 'req-x', argsHash: 'other' }));
      expect(retry).toEqual({ record: first, created: false });
      expect(store.get(first.id)).toEqual(first);
    });

    it('keeps the same request_id of different clients apart', () => {
      const a = store.createOrGet(job({ clientId: 'client-a', requestId: 'req-x' }));
      const b = store.createOrGet(job({ clientId: 'client-b', requestId: 'req-x' }));
      expect(a.created).toBe(true);
      expect(b.created).toBe(true);
      expect(b.record.id).not.toBe(a.record.id);
      expect(store.get(a.record.id)?.clientId).toBe('client-a');
      expect(store.get(b.record.id)?.clientId).toBe('client-b');
    });

    it('returns undefined for an unknown job', () => {
      expect(store.get('nope')).toBeUndefined();
      expect(store.update('nope', { status: 'running' }, 5_000)).toBeUndefined();
      expect(store.eventsAfter('nope', -1)).toEqual([]);
    });

    it('bumps seq on every update and records each change in order', () => {
      const record = job();
      store.createOrGet(record);

      const running = store.update(record.id, { status: 'running', attempts: 1 }, 5_001);
      expect(running).toMatchObject({ status: 'running', attempts: 1, seq: 1, updatedAt: 5_001 });
      store.update(record.id, { progress: { current: 1, total: 2, message: 'half' } }, 5_002);
      const done = store.update(
        record.id,
        { status: 'done', output: { echoed: { deep: [1, null] } }, finishedAt: 5_003 },
        5_003,
      );
      expect(done).toEqual({
        ...record,
        status: 'done',
        attempts: 1,
        progress: { current: 1, total: 2, message: 'half' },
        output: { echoed: { deep: [1, null] } },
        seq: 3,
        updatedAt: 5_003,
        finishedAt: 5_003,
      });
      expect(store.get(record.id)).toEqual(done);

      const all = store.eventsAfter(record.id, -1);
      expect(all.map((event) => event.seq)).toEqual([0, 1, 2, 3]);
      expect(all.map((event) => event.record.seq)).toEqual([0, 1, 2, 3]);
      expect(all[0]!.record).toEqual(record);
      expect(all[3]!.record).toEqual(done);

      const missed = store.eventsAfter(record.id, 1);
      expect(missed.map((event) => [event.seq, event.record.status])).toEqual([
        [2, 'running'],
        [3, 'done'],
      ]);
      expect(missed[0]!.record.progress).toEqual({ current: 1, total: 2, message: 'half' });
      expect(store.eventsAfter(record.id, 3)).toEqual([]);
    });

    it('keeps nulls null and stores an error', () => {
      const record = job();
      store.createOrGet(record);
      const failed = store.update(
        record.id,
        { status: 'error', error: { code: 'INTERRUPTED', message: 'stopped' }, finishedAt: 9 },
        9,
      );
      expect(failed).toMatchObject({
        progress: null,
        output: null,
        error: { code: 'INTERRUPTED', message: 'stopped' },
        finishedAt: 9,
      });
      const requeued = store.update(record.id, { status: 'queued', progress: null }, 10);
      expect(requeued?.progress).toBeNull();
    });

    it('lists jobs by status, oldest first', () => {
      const queued = job({ createdAt: 30 });
      const running = job({ createdAt: 10, status: 'running' });
      const olderQueued = job({ createdAt: 20 });
      const done = job({ createdAt: 5, status: 'done', finishedAt: 40 });
      for (const record of [queued, running, olderQueued, done]) store.createOrGet(record);

      const ids = (statuses: JobRecord['status'][]) =>
        store.listByStatus(statuses).map((record) => record.id);
      expect(ids(['queued', 'running'])).toEqual([running.id, olderQueued.id, queued.id]);
      expect(ids(['queued'])).toEqual([olderQueued.id, queued.id]);
      expect(ids(['done'])).toEqual([done.id]);
      expect(ids(['cancelled'])).toEqual([]);
      expect(ids([])).toEqual([]);
    });

    it('deletes only finished jobs older than the cutoff, with their events', () => {
      const old = job({ requestId: 'req-old' });
      const recent = job();
      const unfinished = job();
      for (const record of [old, recent, unfinished]) store.createOrGet(record);
      store.update(old.id, { status: 'done', output: {}, finishedAt: 100 }, 100);
      store.update(recent.id, { status: 'cancelled', finishedAt: 200 }, 200);
      store.update(unfinished.id, { status: 'running' }, 50);

      expect(store.deleteFinishedBefore(200)).toBe(1);
      expect(store.get(old.id)).toBeUndefined();
      expect(store.eventsAfter(old.id, -1)).toEqual([]);
      expect(store.get(recent.id)?.status).toBe('cancelled');
      expect(store.eventsAfter(recent.id, -1)).toHaveLength(2);
      expect(store.get(unfinished.id)?.status).toBe('running');
      expect(store.deleteFinishedBefore(200)).toBe(0);

      // Past retention, the request_id is free again.
      const again = store.createOrGet(job({ requestId: 'req-old' }));
      expect(again.created).toBe(true);
    });

    it('hands out copies that callers may change, never reaching the stored job', () => {
      // Args and outputs may be shared and frozen (issue 21, V2): changing them throws, if anything.
      const attempt = (change: () => void) => {
        try {
          change();
        } catch (error) {
          expect(error).toBeInstanceOf(TypeError);
        }
      };
      const record = job();
      const created = store.createOrGet(record).record;
      attempt(() => {
        created.args.seconds = 99;
      });
      record.status = 'done';
      const fetched = store.get(record.id)!;
      fetched.status = 'cancelled';
      const updated = store.update(record.id, { progress: { current: 1 } }, 5_000)!;
      updated.progress!.current = 42;
      const [event] = store.eventsAfter(record.id, 0);
      event!.record.output = { tampered: true };
      const [listed] = store.listByStatus(['queued']);
      listed!.tool = 'other';
      attempt(() =>
        (
          store.createOrGet(job({ requestId: record.requestId })).record.args.payload as {
            nested: unknown[];
          }
        ).nested.push('x'),
      );

      const stored = store.get(record.id)!;
      expect(stored).toMatchObject({
        status: 'queued',
        tool: 'start_long_task',
        progress: { current: 1 },
        output: null,
        args: { seconds: 1, payload: { nested: [1, 'two', null, { three: true }] } },
      });
      expect(store.eventsAfter(record.id, 0)[0]!.record.output).toBeNull();
    });
  });
});

/** A new database file with the given schema version and a table that is not Signet's. */
function fileAtVersion(version: number): string {
  const path = freshPath();
  const db = new Database(path);
  db.exec('CREATE TABLE other (x INTEGER)');
  db.pragma(`user_version = ${version}`);
  db.close();
  return path;
}

/** Checks that a refused file was closed, unlocked and left as it was. */
function expectUntouchedAndFree(path: string, version: number): void {
  const db = new Database(path);
  try {
    // Throws SQLITE_BUSY if the refused store still held its exclusive lock.
    db.exec('BEGIN EXCLUSIVE; COMMIT');
    expect(db.pragma('user_version', { simple: true })).toBe(version);
    const tables = db.prepare<[], { name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table'",
    );
    expect(tables.all().map((row) => row.name)).toEqual(['other']);
  } finally {
    db.close();
  }
}

describe('SqliteFile only', () => {
  it('keeps nonces and jobs across close and reopen', () => {
    const path = freshPath();
    const first = new SqliteFile(path);
    expect(first.description).toBe(`sqlite:${path}`);
    const record = job();
    first.claim('client-a', 'nonce-0000000001', 10_000);
    first.createOrGet(record);
    first.update(record.id, { status: 'running', attempts: 1 }, 5_000);
    first.close();
    first.close(); // idempotent

    const second = new SqliteFile(path);
    try {
      expect(second.claim('client-a', 'nonce-0000000001', 10_000)).toBe(false);
      expect(second.get(record.id)).toMatchObject({ status: 'running', attempts: 1, seq: 1 });
      expect(second.eventsAfter(record.id, -1).map((event) => event.seq)).toEqual([0, 1]);
      expect(second.createOrGet(job({ requestId: record.requestId })).created).toBe(false);
    } finally {
      second.close();
    }
  });

  it('sets up WAL and the schema version', () => {
    const path = freshPath();
    new SqliteFile(path).close();
    const db = new Database(path, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(4);
    } finally {
      db.close();
    }
  });

  it('drops pruned nonces from the file too, and keeps the rest', () => {
    const path = freshPath();
    const first = new SqliteFile(path);
    first.claim('client-a', 'old-nonce-000001', 100_000);
    first.claim('client-a', 'new-nonce-000001', 900_000);
    first.pruneNonces(200_000);
    first.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM nonce_batches').get()).toEqual({ n: 1 });
    db.close();
    const second = new SqliteFile(path);
    try {
      expect(second.claim('client-a', 'old-nonce-000001', 900_000)).toBe(true);
      expect(second.claim('client-a', 'new-nonce-000001', 900_000)).toBe(false);
    } finally {
      second.close();
    }
  });

  it('has written group-committed claims to the file by the time they are answered', async () => {
    const path = freshPath();
    const first = new SqliteFile(path);
    const answered = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        first.claimSoon('client-a', `nonce-${i}-padding`, 9e12),
      ),
    );
    expect(answered.every(Boolean)).toBe(true);
    first.close();
    const second = new SqliteFile(path);
    try {
      for (let i = 0; i < 300; i++) {
        expect(second.claim('client-a', `nonce-${i}-padding`, 9e12)).toBe(false);
      }
    } finally {
      second.close();
    }
  });

  it('group-commits claims made together, and still lets only one copy through', async () => {
    const store = new SqliteFile(freshPath());
    try {
      const results = await Promise.all([
        store.claimSoon('client-a', 'nonce-0000000001', 10_000),
        store.claimSoon('client-a', 'nonce-0000000001', 10_000),
        store.claimSoon('client-b', 'nonce-0000000001', 10_000),
      ]);
      expect(results).toEqual([true, false, true]);
      expect(store.claim('client-a', 'nonce-0000000001', 10_000)).toBe(false);
    } finally {
      store.close();
    }
  });

  it('refuses a database written by a newer schema', () => {
    const path = fileAtVersion(999);
    expect(() => new SqliteFile(path)).toThrow(/schema version 999 is newer/);
    expectUntouchedAndFree(path, 999);
  });

  // Versions 1 and 2 only ever existed in development builds: no upgrade, a clear refusal.
  it.each([1, 2])('refuses a database of the development-only schema version %i', (version) => {
    const path = fileAtVersion(version);
    expect(() => new SqliteFile(path)).toThrow(
      `database schema version ${version} is from an unreleased development build and cannot ` +
        'be opened: delete the file, or point the store at a new one',
    );
    expectUntouchedAndFree(path, version);
  });

  it('lets exactly one of many simultaneous claims of a nonce through', async () => {
    const store = new SqliteFile(freshPath());
    try {
      const claims = Array.from({ length: 100 }, async () =>
        store.claim('client-a', 'nonce-0000000001', 10_000),
      );
      const results = await Promise.all(claims);
      expect(results.filter(Boolean)).toHaveLength(1);
    } finally {
      store.close();
    }
  });

  it('refuses a second store on a file another one holds, and frees it on close', () => {
    const path = freshPath();
    const a = new SqliteFile(path);
    expect(() => new SqliteFile(path)).toThrow(/in use by another Signet server/);
    a.close();
    const b = new SqliteFile(path);
    expect(b.claim('client-a', 'nonce-0000000001', 10_000)).toBe(true);
    b.close();
  });
});

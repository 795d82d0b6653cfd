import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  auditTestRoot,
  expectEveryChangeNamed,
  keys,
  linesOf,
  rewrite,
  writeTestLog,
} from '../testing/audit-log.ts';
import { lineOf } from './chain.ts';
import { verifyAuditFolder } from './verify.ts';

afterAll(() => rmSync(auditTestRoot(), { recursive: true, force: true }));

describe('verifyAuditFolder', () => {
  // 30 anchored entries (3 checkpoints, one per 10), then 5 unanchored ones.
  const { folder } = writeTestLog({ count: 30, tail: 5, maxBytes: 3000 });
  const original = linesOf(folder);
  const lastCheckpoint = original.findLastIndex((l) => JSON.parse(l.text).type === 'checkpoint');

  it('accepts the untouched log, with its tail unanchored', () => {
    const report = verifyAuditFolder(folder, keys);
    expect(report.ok).toBe(true);
    expect(report.chains[0]).toMatchObject({ entries: 35, unanchored: 5, checkpoints: 3 });
    expect(new Set(original.map((l) => l.file)).size).toBeGreaterThan(2);
  });

  it('names the changed line for every single-line change', () => {
    const tried = expectEveryChangeNamed(folder, keys);
    expect(tried).toBeGreaterThan(original.length * 6);
  });

  it('shows a cut tail as unanchored, and a cut into the anchored part likewise', () => {
    for (const keep of [original.length - 1, original.length - 3, lastCheckpoint]) {
      rewrite(folder, original.slice(0, keep));
      const report = verifyAuditFolder(folder, keys);
      expect(report.ok).toBe(true);
      const entries = original
        .slice(0, keep)
        .filter((l) => JSON.parse(l.text).type !== 'checkpoint');
      expect(report.chains[0]!.entries).toBe(entries.length);
    }
    rewrite(folder, original);
  });

  it("checks each Ed25519 call's envelope against the client's key", () => {
    const wrongKeys = { ...keys, clientKeys: () => keys.serverKeys[0]!.publicKey };
    const report = verifyAuditFolder(folder, wrongKeys);
    const first = original.findIndex((l) => JSON.parse(l.text).envelope !== undefined);
    expect(report.failure).toMatchObject({
      file: original[first]!.file,
      line: original[first]!.line,
      reason: expect.stringContaining('signature'),
    });
    const noKeys = verifyAuditFolder(folder, { ...keys, clientKeys: () => undefined });
    expect(noKeys.failure?.reason).toContain('no public key for client edge');
  });

  it('refuses checkpoints signed by an unknown server key', () => {
    const report = verifyAuditFolder(folder, { ...keys, serverKeys: [] });
    const first = original.findIndex((l) => JSON.parse(l.text).type === 'checkpoint');
    expect(report.failure).toMatchObject({
      line: original[first]!.line,
      reason: expect.stringContaining('unknown server key'),
    });
  });

  it('refuses a stripped signature on the last checkpoint of a closed log', () => {
    const closed = writeTestLog({ count: 25 }).folder;
    const lines = linesOf(closed);
    const last = lines.at(-1)!;
    const entry = JSON.parse(last.text);
    expect(entry.type).toBe('checkpoint');
    rewrite(
      closed,
      lines.with(-1, { ...last, text: lineOf({ ...entry, signature: null, at: 1 }) }),
    );
    expect(verifyAuditFolder(closed, keys).failure).toMatchObject({
      file: last.file,
      line: last.line,
      reason: 'the chain mixes signed and unsigned checkpoints',
    });
  });

  it('names a missing file', () => {
    const second = original.find((l) => l.file.endsWith('.2.jsonl'))!;
    const text = readFileSync(join(folder, second.file), 'utf8');
    rmSync(join(folder, second.file));
    expect(verifyAuditFolder(folder, keys).failure).toMatchObject({
      file: second.file,
      reason: 'the file is missing',
    });
    writeFileSync(join(folder, second.file), text);
    expect(verifyAuditFolder(folder, keys).ok).toBe(true);
  });
});

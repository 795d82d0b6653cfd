import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  auditTestRoot,
  keys,
  type Located,
  linesOf,
  rewrite,
  writeTestLog,
} from '../testing/audit-log.ts';
import { lineOf } from './chain.ts';
import { verifyAuditFolder } from './verify.ts';

/** A change to the line at index k: the lines after it, or undefined if it does not apply. */
type Change = (lines: Located[], k: number) => Located[] | undefined;

const withText = (l: Located, text: string): Located => ({ ...l, text });
const edit =
  (field: string, to: (value: unknown) => unknown, only?: string): Change =>
  (lines, k) => {
    const entry = JSON.parse(lines[k]!.text);
    if (only !== undefined && entry.type !== only) return undefined;
    entry[field] = to(entry[field]);
    return lines.with(k, withText(lines[k]!, lineOf(entry)));
  };

const CHANGES: Record<string, Change> = {
  'edit at': edit('at', (at) => Number(at) + 1),
  'edit prev': edit('prev', () => randomBytes(32).toString('hex')),
  'edit tool': edit('tool', () => 'other', 'call'),
  'edit outcome': edit('outcome', () => ({ status: 'error', reason: 'FORGED' }), 'call'),
  'edit job status': edit('status', () => 'cancelled', 'job'),
  'edit checkpoint count': edit('count', (n) => Number(n) - 1, 'checkpoint'),
  'edit checkpoint head': edit('head', () => randomBytes(32).toString('hex'), 'checkpoint'),
  'edit checkpoint signature': edit('signature', () => null, 'checkpoint'),
  'add whitespace': (lines, k) => lines.with(k, withText(lines[k]!, ` ${lines[k]!.text}`)),
  delete: (lines, k) => lines.toSpliced(k, 1),
  'insert a copied line': (lines, k) =>
    lines.toSpliced(k, 0, withText(lines[k]!, lines[k === 0 ? 1 : k - 1]!.text)),
  'swap with the next': (lines, k) =>
    k + 1 < lines.length
      ? lines
          .with(k, withText(lines[k]!, lines[k + 1]!.text))
          .with(k + 1, withText(lines[k + 1]!, lines[k]!.text))
      : undefined,
};

/** Where index k of `lines` sits once they are written back (a removal shifts line numbers). */
function locate(lines: Located[], k: number): string {
  const l = lines[k]!;
  const line = lines.slice(0, k).filter((o) => o.file === l.file).length + 1;
  return `${l.file}:${line}`;
}

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
    let tried = 0;
    for (const [name, change] of Object.entries(CHANGES)) {
      for (let k = 0; k < original.length; k++) {
        // The very last line has nothing after it to vouch for it: changing it is the same as
        // cutting the tail and appending another line, which only a checkpoint could catch.
        if (k === original.length - 1 && name !== 'insert a copied line') continue;
        const changed = change(original, k);
        if (!changed) continue;
        rewrite(folder, changed);
        const report = verifyAuditFolder(folder, keys);
        const where = `${name} at ${original[k]!.file}:${original[k]!.line}`;
        expect(report.ok, where).toBe(false);
        const f = report.failure!;
        const named = `${f.file}:${f.line}`;
        // A broken link between the last two lines cannot tell which side changed: nothing
        // follows to check the last one against. (It is after the last checkpoint.)
        const lastLink =
          k === original.length - 2 && k + 1 < changed.length && named === locate(changed, k + 1);
        if (!lastLink) expect(named, `${where}: ${f.reason}`).toBe(locate(changed, k));
        tried++;
      }
    }
    rewrite(folder, original);
    expect(verifyAuditFolder(folder, keys).ok).toBe(true);
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

import { appendFileSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { auditTestRoot, call, keys, linesOf, writeTestLog } from '../testing/audit-log.ts';
import { genesisOf, sha256Hex } from './chain.ts';
import { verifyAuditFolder } from './verify.ts';
import { AuditLog } from './writer.ts';

afterAll(() => rmSync(auditTestRoot(), { recursive: true, force: true }));

describe('AuditLog', () => {
  it("writes a turn's lines together as the turn ends, in order; flush writes at once", async () => {
    const folder = join(auditTestRoot(), 'turns');
    const log = AuditLog.open({ folder });
    for (let i = 0; i < 3; i++) log.append(call(i, false));
    const file = join(folder, `${log.chainId}.1.jsonl`);
    expect(readFileSync(file, 'utf8')).toBe('');
    await new Promise((resolve) => setImmediate(resolve));
    expect(linesOf(folder).map((l) => JSON.parse(l.text).seq)).toEqual([0, 1, 2]);
    log.append(call(3, false));
    log.flush();
    expect(linesOf(folder)).toHaveLength(4);
    log.close();
    expect(verifyAuditFolder(folder, keys).chains[0]).toMatchObject({ entries: 4, unanchored: 0 });
  });

  it('writes a chain that verifies, rotating files and checkpointing', () => {
    const { folder, log } = writeTestLog({ count: 40 });
    const names = readdirSync(folder).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    expect(names.length).toBeGreaterThan(3);
    expect(names).toEqual(names.map((_, i) => `${log.chainId}.${i + 1}.jsonl`));
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    for (const name of names) {
      expect(statSync(join(folder, name)).mode & 0o777).toBe(0o600);
      expect(statSync(join(folder, name)).size).toBeLessThanOrEqual(4096);
    }
    const lines = linesOf(folder);
    // The chain runs across the files: each prev is the hash of the line before.
    expect(JSON.parse(lines[0]!.text).prev).toBe(genesisOf(log.chainId));
    for (let i = 1; i < lines.length; i++) {
      expect(JSON.parse(lines[i]!.text)).toMatchObject({
        seq: i,
        prev: sha256Hex(lines[i - 1]!.text),
      });
    }
    const report = verifyAuditFolder(folder, keys);
    expect(report.ok).toBe(true);
    expect(report.chains).toEqual([
      expect.objectContaining({
        chain: log.chainId,
        files: names.length,
        entries: 40,
        checkpoints: 4, // every 10 entries; close adds none after the checkpoint at the 40th
        unsignedCheckpoints: 0,
        clients: ['client-001', 'edge'],
        unanchored: 0,
      }),
    ]);
  });

  it('checkpoints on an interval only when something was appended', async () => {
    const folder = join(writeTestLog({ count: 0 }).folder, '..', 'timed');
    const log = AuditLog.open({ folder, checkpointEveryMs: 20 });
    log.append({
      type: 'job',
      job_id: 'j',
      client_id: 'c',
      tool: 't',
      status: 'queued',
      job_seq: 0,
    });
    await new Promise((resolve) => setTimeout(resolve, 120));
    log.close();
    const types = linesOf(folder).map((l) => JSON.parse(l.text).type);
    expect(types).toEqual(['job', 'checkpoint']);
    expect(() =>
      log.append({
        type: 'job',
        job_id: 'j',
        client_id: 'c',
        tool: 't',
        status: 'done',
        job_seq: 1,
      }),
    ).toThrow();
  });

  it('accepts unsigned checkpoints and says so', () => {
    const { folder } = writeTestLog({ count: 12, signed: false });
    const report = verifyAuditFolder(folder, keys);
    expect(report.ok).toBe(true);
    expect(report.chains[0]).toMatchObject({ checkpoints: 2, unsignedCheckpoints: 2 });
  });

  it('reports a torn final line and ignores it', () => {
    const { folder } = writeTestLog({ count: 15, tail: 3 });
    const last = linesOf(folder).at(-1)!;
    appendFileSync(join(folder, last.file), '{"seq":19,"at":1');
    const report = verifyAuditFolder(folder, keys);
    expect(report.ok).toBe(true);
    expect(report.chains[0]).toMatchObject({
      entries: 18,
      unanchored: 3,
      torn: `${last.file}:${last.line + 1}`,
    });
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isReasonCode, REASON_STATUS } from './reasons.ts';
import { sharedFile } from './shared-files.ts';

/** The table of DESIGN 1.5, read from the design itself: reason code → HTTP status. */
function designTable(): Map<string, number> {
  const design = readFileSync(sharedFile('DESIGN.md'), 'utf8');
  const section = design.split('### 1.5')[1]?.split('###')[0] ?? '';
  const table = new Map<string, number>();
  for (const line of section.split('\n')) {
    const row = /^\|\s*(\d{3})\s*\|(.*)\|\s*$/.exec(line);
    if (!row) continue;
    for (const [, code] of row[2]!.matchAll(/`([A-Z_]+)`/g)) table.set(code!, Number(row[1]));
  }
  return table;
}

describe('reason codes (DESIGN 1.5)', () => {
  it('REASON_STATUS is exactly the table of DESIGN 1.5', () => {
    const table = designTable();
    expect(table.size).toBeGreaterThanOrEqual(20);
    expect(Object.fromEntries(table)).toEqual({ ...REASON_STATUS });
  });

  it('isReasonCode accepts the codes and nothing else', () => {
    for (const code of Object.keys(REASON_STATUS)) expect(isReasonCode(code)).toBe(true);
    for (const bad of ['INTERRUPTED', 'bad_signature', '', 'toString', '__proto__', 400, null]) {
      expect(isReasonCode(bad), String(bad)).toBe(false);
    }
  });
});

// The package's copies of the shared contract are the contract itself, byte for byte.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONTRACT_COPY_DIR, SHARED_DIR } from './shared-files.ts';

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: URL, prefix = ''): string[] {
  return readdirSync(new URL(prefix, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(dir, `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}

describe.skipIf(!existsSync(SHARED_DIR))('copies of shared/ (contract/)', () => {
  it('hold DESIGN.md and every vector, as they are in shared/', () => {
    const copied = [
      'DESIGN.md',
      ...filesUnder(new URL('vectors/', SHARED_DIR), '').map((f) => `vectors/${f}`),
    ];
    for (const path of copied) {
      expect(readFileSync(new URL(path, CONTRACT_COPY_DIR), 'utf8'), path).toBe(
        readFileSync(new URL(path, SHARED_DIR), 'utf8'),
      );
    }
  });
});

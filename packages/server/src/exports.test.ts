// The package's entry points: the root one must not reach the optional peers (better-sqlite3,
// bullmq, ioredis), which only `@signet/server/sqlite` and `/redis` may load.
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = dirname(fileURLToPath(import.meta.url));
const OPTIONAL_PEERS = ['better-sqlite3', 'bullmq', 'ioredis'];

/** Every module `entry` reaches through its imports (type-only ones too), and the packages. */
function importGraph(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    const text = readFileSync(file, 'utf8');
    for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      if (specifier!.startsWith('.')) visit(join(dirname(file), specifier!));
      else packages.add(specifier!);
    }
  };
  visit(join(SRC, entry));
  return { files, packages };
}

describe('@signet/server entry points', () => {
  it.each(['index.ts', 'node.ts'])('%s reaches none of the optional peers', (entry) => {
    const { files, packages } = importGraph(entry);
    const reached = [...files].map((file) => relative(SRC, file));
    expect(reached.filter((file) => /^(redis\/|stores\/sqlite|peers\.ts)/.test(file))).toEqual([]);
    expect([...packages].filter((name) => OPTIONAL_PEERS.includes(name))).toEqual([]);
  });

  it('exports a file for each entry of package.json', () => {
    const manifest = JSON.parse(readFileSync(join(SRC, '../package.json'), 'utf8')) as {
      exports: Record<string, Record<string, string>>;
    };
    for (const [path, conditions] of Object.entries(manifest.exports)) {
      expect(
        () => readFileSync(join(SRC, '..', conditions['@signet/source']!)),
        path,
      ).not.toThrow();
    }
  });
});

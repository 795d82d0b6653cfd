import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requirePeer } from './peers.ts';

const dir = mkdtempSync(join(tmpdir(), 'signet-peers-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('requirePeer', () => {
  it('names the missing package and how to install it', () => {
    const load = () => requirePeer('@signet/no-such-peer', '@signet/server/sqlite');
    expect(load).toThrow(
      '@signet/server/sqlite needs the package "@signet/no-such-peer": ' +
        'install it with `npm install @signet/no-such-peer`',
    );
    try {
      load();
    } catch (error) {
      expect((error as Error).message).not.toContain('\n');
      expect((error as Error).cause).toMatchObject({ code: 'MODULE_NOT_FOUND' });
    }
  });

  it('reports a module missing inside an installed package as it is', () => {
    // An "installed package" whose own dependency is missing.
    const path = join(dir, 'broken-peer.cjs');
    writeFileSync(path, "module.exports = require('@signet/no-such-dependency');\n");
    expect(() => requirePeer(path, '@signet/server/redis')).toThrow(
      expect.objectContaining({
        code: 'MODULE_NOT_FOUND',
        message: expect.stringMatching(/^Cannot find module '@signet\/no-such-dependency'/),
      }),
    );
  });

  it('returns an installed package', () => {
    expect(requirePeer('better-sqlite3', '@signet/server/sqlite')).toBeTypeOf('function');
    const ioredis = requirePeer<typeof import('ioredis')>('ioredis', '@signet/server/redis');
    expect(ioredis.Redis).toBeTypeOf('function');
  });
});

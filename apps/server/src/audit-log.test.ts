import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  auditTestRoot,
  clientPair,
  linesOf,
  serverPair,
  writeTestLog,
} from '@signet/server/testing';
import { afterAll, describe, expect, it } from 'vitest';

// `pnpm audit-log`, spawned as the root script runs it.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function auditLog(...args: string[]) {
  const run = spawnSync(
    process.execPath,
    ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/audit-log.ts', ...args],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, SIGNET_AUDIT: '', SIGNET_KEYRING: '' } },
  );
  return { code: run.status, out: run.stdout, err: run.stderr };
}

afterAll(() => rmSync(auditTestRoot(), { recursive: true, force: true }));

describe('pnpm audit-log', () => {
  const { folder } = writeTestLog({ count: 20, tail: 2 });
  const keyring = join(folder, '..', 'keyring.json');
  writeFileSync(
    keyring,
    JSON.stringify({
      server_id: 'mcp-server-001',
      clients: [
        { client_id: 'client-001', keys: [{ kid: 'k1', secret: 'x'.repeat(32) }] },
        {
          client_id: 'edge',
          keys: [{ kid: 'e1', alg: 'ed25519', public_key: clientPair.publicKey }],
        },
      ],
      server_keys: [{ kid: 's1', alg: 'ed25519', private_key: serverPair.privateKey }],
    }),
  );
  const publicKeys = join(folder, '..', 'public-keys.json');
  writeFileSync(
    publicKeys,
    JSON.stringify({
      server_keys: [{ kid: 's1', public_key: serverPair.publicKey }],
      clients: [
        {
          client_id: 'edge',
          keys: [{ kid: 'e1', alg: 'ed25519', public_key: clientPair.publicKey }],
        },
      ],
    }),
  );

  it('verifies with a keyring or with public keys only, printing a one-line summary', () => {
    for (const keys of [keyring, publicKeys]) {
      const { code, out, err } = auditLog('verify', folder, '--keys', keys);
      expect(err).toBe('');
      expect(code).toBe(0);
      expect(out).toMatch(
        /^audit-log: OK 1 chains, 22 entries, 2 clients, 2026-01-01T\S+ \.\. 2026-01-01T\S+, 2 unanchored\n$/,
      );
    }
  });

  it('fails naming the first bad line', () => {
    const lines = linesOf(folder);
    const victim = lines[5]!;
    const path = join(folder, victim.file);
    const original = readFileSync(path, 'utf8');
    writeFileSync(path, original.replace(victim.text, victim.text.replace('"at":', '"at":1')));
    const { code, err } = auditLog('verify', folder, '--keys', publicKeys);
    writeFileSync(path, original);
    expect(code).toBe(1);
    expect(err).toMatch(new RegExp(`FAILED ${victim.file}:${victim.line}: `));
  });

  it('fails when the keys cannot check the signatures, and on bad usage', () => {
    const none = join(folder, '..', 'none.json');
    writeFileSync(none, '{}');
    expect(auditLog('verify', folder, '--keys', none)).toMatchObject({
      code: 1,
      err: expect.stringContaining('no public key for client edge kid e1'),
    });
    expect(auditLog('verify', folder, '--keys', join(folder, 'missing.json')).code).toBe(2);
    expect(auditLog('frobnicate').code).toBe(2);
  });

  it('shows matching entries', () => {
    const { code, out } = auditLog('show', folder, '--client', 'edge', '--outcome', 'TOOL_FAILED');
    expect(code).toBe(0);
    const shown = out.trim().split('\n');
    expect(shown.length).toBeGreaterThan(0);
    for (const line of shown)
      expect(line).toMatch(/ edge call \S+ error TOOL_FAILED request req-\d+ \(ed25519\)$/);
    const jobs = auditLog(
      'show',
      folder,
      '--tool',
      'start_long_task',
      '--until',
      '2026-01-01T00:00:09Z',
    );
    expect(jobs.out.trim().split('\n')).toEqual([
      expect.stringMatching(/ client-001 job {2}start_long_task done job job-4 #4$/),
    ]);
  });
});

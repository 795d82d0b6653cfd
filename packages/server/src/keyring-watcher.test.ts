import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { generateSecret, type Keyring, KeyringError, type KeyringFile } from './keyring.ts';
import { type KeyringWatcher, watchKeyring } from './keyring-watcher.ts';

const dirs: string[] = [];
const watchers: KeyringWatcher[] = [];
afterEach(() => {
  for (const watcher of watchers.splice(0)) watcher.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'signet-watcher-'));
  dirs.push(dir);
  return dir;
}

function file(kid: string, secret = generateSecret()): KeyringFile {
  return {
    server_id: 'mcp-server-001',
    clients: [{ client_id: 'client-001', keys: [{ kid, secret }] }],
  };
}

function capturingLogger() {
  const records: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, records };
}

function start(path: string, pollMs?: number) {
  const { logger, records } = capturingLogger();
  const watcher = watchKeyring(path, { logger, ...(pollMs ? { pollMs } : {}) });
  watchers.push(watcher);
  return { watcher, records };
}

const kidOf = (keyring: Keyring) => keyring.client('client-001')?.keys[0]?.kid;

/** Polls `check` every 20 ms until it holds; fails after `ms`. */
async function until(check: () => boolean, ms = 2_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('watchKeyring', () => {
  it('swaps in a file replaced by rename (how editors and deploy tools write) within 2 s', async () => {
    const path = join(tempDir(), 'keyring.json');
    writeFileSync(path, JSON.stringify(file('k1')));
    const { watcher } = start(path);
    const before = watcher.current();
    expect(kidOf(before)).toBe('k1');
    writeFileSync(`${path}.tmp`, JSON.stringify(file('k2')));
    renameSync(`${path}.tmp`, path);
    await until(() => kidOf(watcher.current()) === 'k2', 2_000, 'the new keyring');
    // The old keyring object is untouched: a call that took it keeps its keys.
    expect(kidOf(before)).toBe('k1');
  });

  it('swaps in a file rewritten in place', async () => {
    const path = join(tempDir(), 'keyring.json');
    writeFileSync(path, JSON.stringify(file('k1')));
    const { watcher } = start(path);
    writeFileSync(path, JSON.stringify(file('k2')));
    await until(() => kidOf(watcher.current()) === 'k2', 2_000, 'the new keyring');
  });

  it('after a burst of rewrites, the last one is in force', async () => {
    const path = join(tempDir(), 'keyring.json');
    writeFileSync(path, JSON.stringify(file('k0')));
    const { watcher } = start(path);
    for (let i = 1; i <= 10; i++) writeFileSync(path, JSON.stringify(file(`k${i}`)));
    await until(() => kidOf(watcher.current()) === 'k10', 2_000, 'the last keyring');
  });

  it('notices a change that fs.watch cannot see, by polling', async () => {
    // The watched path is a symlink into another directory: fs.watch on the keyring's directory
    // sees nothing when the target changes; only the stat polling does.
    const real = join(tempDir(), 'real.json');
    writeFileSync(real, JSON.stringify(file('k1')));
    const path = join(tempDir(), 'keyring.json');
    symlinkSync(real, path);
    const { watcher } = start(path, 50);
    expect(kidOf(watcher.current())).toBe('k1');
    // The poller takes its first stat asynchronously; a change before it would be its baseline,
    // so the file is changed on every check until the watcher picks one version up.
    let version = 0;
    await until(
      () => {
        if (kidOf(watcher.current())?.startsWith('k2-')) return true;
        writeFileSync(real, JSON.stringify(file(`k2-${++version}`)));
        return false;
      },
      2_000,
      'the polled change',
    );
  });

  it('refuses a bad file and keeps the old keyring, saying why without the secret', async () => {
    const path = join(tempDir(), 'keyring.json');
    writeFileSync(path, JSON.stringify(file('k1')));
    const { watcher, records } = start(path);
    const good = watcher.current();
    const refusals = () => records.filter((r) => r.msg === 'keyring refused; keeping the old one');
    const shortSecret = 's'.repeat(31);
    const bad: Array<[string, RegExp]> = [
      ['{"server_id":', /not valid JSON/],
      [JSON.stringify(file('k2', shortSecret)), /at least 32 characters/],
      [JSON.stringify({ ...file('k2'), extra: 1 }), /Unrecognized key/],
      [
        JSON.stringify({
          server_id: 'mcp-server-001',
          clients: [file('k2').clients[0], file('k3').clients[0]],
        }),
        /listed twice/,
      ],
      ['', /not valid JSON/],
    ];
    for (const [content, why] of bad) {
      const before = refusals().length;
      writeFileSync(path, content);
      await until(() => refusals().length > before, 2_000, 'the refusal');
      expect(String(refusals().at(-1)?.reason)).toMatch(why);
      expect(watcher.current()).toBe(good);
      expect(watcher.reload()).toBe(false);
      expect(watcher.current()).toBe(good);
    }
    expect(JSON.stringify(records)).not.toContain(shortSecret);

    // A missing file is refused too.
    rmSync(path);
    expect(watcher.reload()).toBe(false);
    expect(watcher.current()).toBe(good);

    writeFileSync(path, JSON.stringify(file('k9')));
    expect(watcher.reload()).toBe(true);
    expect(kidOf(watcher.current())).toBe('k9');
  });

  it('refuses to start on a bad file', () => {
    const path = join(tempDir(), 'keyring.json');
    writeFileSync(path, JSON.stringify(file('k1', 'short')));
    expect(() => start(path)).toThrow(KeyringError);
    expect(() => start(join(tempDir(), 'missing.json'))).toThrow(/cannot read keyring/);
  });
});

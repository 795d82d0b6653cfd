// A client written from the tutorial (Python standard library, json.dumps signing) against the
// real entry point, `pnpm serve`, with a keyring written by the real `pnpm keygen`; and the same
// client with an Ed25519 key (Python's `cryptography` package), from `pnpm keygen --ed25519`.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot, type ServerProcess, startProcess } from '@signet/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FRONT, onFront } from './testing/front.ts';

const hasPython = spawnSync('python3', ['--version']).status === 0;
const hasCryptography =
  hasPython && spawnSync('python3', ['-c', 'import cryptography']).status === 0;
const SCRIPT = fileURLToPath(new URL('../interop/tutorial_client.py', import.meta.url));

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, killing it after `timeoutMs`. */
function run(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd ?? repoRoot,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** SIGTERM to the server's process group, bounded; SIGKILL if it does not exit in time. */
async function stop(server: ServerProcess, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const exitedInTime = await Promise.race([
    server.kill('SIGTERM').then(() => true),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (!exitedInTime) await server.kill('SIGKILL');
}

describe.skipIf(!hasPython)('interop with the tutorial (Python)', () => {
  let dir: string;
  let keyringPath: string;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signet-python-'));
    keyringPath = join(dir, 'keyring.json');
    const keygen = await run('pnpm', ['keygen', '--out', keyringPath, '--client', 'py-client'], {
      timeoutMs: 20_000,
    });
    expect(keygen.code, keygen.stderr).toBe(0);
    const ed = await run(
      'pnpm',
      ['keygen', '--ed25519', '--out', keyringPath, '--client', 'py-ed25519'],
      { timeoutMs: 20_000 },
    );
    expect(ed.code, ed.stderr).toBe(0);
    server = await startProcess(
      'pnpm',
      ['serve'],
      onFront({
        SIGNET_HOST: '127.0.0.1',
        SIGNET_PORT: '0',
        SIGNET_STORE: 'memory:',
        SIGNET_KEYRING: keyringPath,
        SIGNET_LOG_LEVEL: 'warn',
      }),
      20_000,
    );
    expect(server.output()).toContain(`http ${FRONT})`);
  });

  afterAll(async () => {
    if (server) await stop(server, 10_000);
    rmSync(dir, { recursive: true, force: true });
  });

  // (The front is in the title: CI checks that this passed on each.)
  it(`a Python stdlib client signing like the tutorial calls every tool (${FRONT} front)`, async () => {
    const keyring = JSON.parse(readFileSync(keyringPath, 'utf8')) as { server_id: string };
    const result = await run('python3', [SCRIPT, server!.url, keyringPath], { timeoutMs: 25_000 });
    expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const summary = JSON.parse(lines[lines.length - 1]!);
    expect(summary).toMatchObject({
      ok: true,
      server_id: keyring.server_id,
      tools: [
        'batch_sum',
        'cancel_job',
        'list_tools',
        'poll_job',
        'server_identity',
        'start_long_task',
        'watch_job',
      ],
      sum: { count: 5, total: 110 },
      output: { report: 'quarterly', rows: 42, tags: ['signed', 'async'], ok: true },
    });
    expect(summary.statuses.at(-1)).toBe('done');
    // Every response was verified: identity, sum, start, and each poll.
    expect(summary.verified).toBe(3 + summary.polls);
    expect(summary.polls).toBeGreaterThan(1);
  });

  it.skipIf(!hasCryptography)(
    `a Python client with an Ed25519 key makes the same calls (${FRONT} front)`,
    async () => {
      const credentials = join(dir, 'credentials', 'py-ed25519.json');
      const result = await run('python3', [SCRIPT, server!.url, '--credentials', credentials], {
        timeoutMs: 25_000,
      });
      expect(result.code, `stdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(0);
      const lines = result.stdout.trim().split('\n');
      const summary = JSON.parse(lines[lines.length - 1]!);
      expect(summary).toMatchObject({
        ok: true,
        sum: { count: 5, total: 110 },
        output: { report: 'quarterly', rows: 42, tags: ['signed', 'async'], ok: true },
        signature_length: 128,
      });
      expect(summary.statuses.at(-1)).toBe('done');
      expect(summary.verified).toBe(3 + summary.polls);
    },
  );
});

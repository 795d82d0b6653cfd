// A private redis-server per test, so that multi-process tests neither see nor disturb what other
// test files do on a shared Redis, and so that a test can take Redis down and bring it back.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually } from '@signet/server/testing';

const run = promisify(execFile);

export interface RedisServer {
  port: number;
  url: string;
  /** Runs a redis-cli command against this server; its trimmed output. */
  cli(...args: string[]): Promise<string>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing is answered. */
  freeze(): void;
  /** Lets a frozen server go on (SIGCONT). */
  thaw(): void;
  /** Kills the server (SIGKILL, as a crash would) and waits until it is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port (and, if persistent, the same data directory). */
  restart(): Promise<void>;
  /** Kills it and removes its data directory. */
  dispose(): Promise<void>;
}

export interface RedisServerOptions {
  /**
   * Keep data across a restart: an append-only file fsynced on every write, so that even a
   * SIGKILL loses nothing that was acknowledged. Without it the server keeps nothing on disk.
   */
  persistent?: boolean;
}

/** A free TCP port on 127.0.0.1, as the kernel hands it out. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'signet-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let output = '';

  const cli = async (...args: string[]) => {
    const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
      timeout: 2_000,
    });
    return stdout.trim();
  };

  const launch = async () => {
    const persistence = opts.persistent
      ? ['--appendonly', 'yes', '--appendfsync', 'always']
      : ['--appendonly', 'no'];
    output = '';
    const started = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...persistence],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = started;
    started.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    started.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    let exited = false;
    started.once('exit', () => {
      exited = true;
    });
    started.once('error', (error) => {
      output += `${error.message}\n`;
      exited = true;
    });
    await eventually(
      async () => {
        if (exited) throw new Error(`redis-server on port ${port} exited:\n${output}`);
        return (await cli('ping').catch(() => '')) === 'PONG' ? true : undefined;
      },
      10_000,
      `redis-server on port ${port} to answer PING`,
    );
  };

  const kill = async () => {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()));
    try {
      process.kill(-current.pid!, 'SIGKILL');
    } catch {}
    await exited;
  };

  // The port was free a moment ago; if something took it since, try another.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      await kill();
      if (attempt === 3) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cli,
    freeze: () => process.kill(child!.pid!, 'SIGSTOP'),
    thaw: () => process.kill(child!.pid!, 'SIGCONT'),
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    dispose: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

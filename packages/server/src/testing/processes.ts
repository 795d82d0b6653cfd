import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Signals the whole process group and waits for the process to exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** What a server prints once it serves; the first group is its URL. */
export const LISTENING = /listening on (http:\/\/\S+)/;
/** What `pnpm worker` prints once it takes jobs. */
export const WORKER_READY = /worker ready/;

/**
 * Starts a server process in a process group of its own and waits (bounded) for its
 * `listening on http://…` line, or for the line `ready` matches (e.g. `WORKER_READY`; then
 * `url` is the match's first group, or '' when it has none).
 */
export function startProcess(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 30_000,
  ready: RegExp = LISTENING,
): Promise<ServerProcess> {
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, signal);
      } catch {}
    }
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void kill('SIGKILL');
      reject(new Error(`no line matching ${ready} within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] ?? '', output: () => output, kill });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before a line matching ${ready}:\n${output}`));
    });
  });
}

/** Polls `check` until it returns a value other than undefined; rejects after `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

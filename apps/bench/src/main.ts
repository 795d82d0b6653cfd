// `pnpm bench [--quick]`: every target on loopback, one at a time, driven by a load generator in
// a process of its own; one table at the end, also written to results/latest.json and the results
// block of BENCHMARKS.md. `pnpm bench --render` only rewrites that block from latest.json.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WORKER_READY } from '@signet/server/testing';
import {
  bench,
  benchKeyring,
  dropNamespace,
  load,
  rssMb,
  shippedEnv as shippedEnvFor,
  shippedServer,
  withTarget,
} from './harness.ts';
import type { LoadPlan } from './load.ts';
import { type Memory, type Results, type Row, report, resultsPath } from './report.ts';

if (process.argv.includes('--render')) {
  report(JSON.parse(readFileSync(resultsPath, 'utf8')) as Results, { save: false });
  process.exit(0);
}

const quick = process.argv.includes('--quick');
const seconds = quick ? 4 : 10;
const warmupSeconds = quick ? 1 : 2;
const connections = 32;
const memoryRequests = quick ? 100_000 : 1_000_000;
const memoryJobs = quick ? 10_000 : 100_000;
const redisUrl = process.env.SIGNET_BENCH_REDIS ?? 'redis://127.0.0.1:6379';
const numbers = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

const dir = mkdtempSync(join(tmpdir(), 'signet-bench-'));
const { keyringPath, credentials, clients } = benchKeyring(dir);
const shippedEnv = (store: string) => shippedEnvFor(keyringPath, store);

function redisAnswers(): boolean {
  try {
    return (
      execFileSync('redis-cli', ['-u', redisUrl, 'ping'], { encoding: 'utf8' }).trim() === 'PONG'
    );
  } catch {
    return false;
  }
}

const rows: Row[] = [];
const notes: string[] = [];

async function http(
  target: string,
  store: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  plan: (url: string) => LoadPlan,
) {
  console.error(`bench: ${target} (${store})…`);
  const result = await withTarget(args, env, (p) => load(plan(p.url)));
  rows.push({ target, store, unit: 'req/s', result });
}

type HttpPlan = Extract<LoadPlan, { kind: 'http' }>;
const httpPlan = (
  url: string,
  path: string,
  body: HttpPlan['body'],
  expect: unknown,
  headers?: Record<string, string>,
): HttpPlan => ({
  kind: 'http',
  url,
  path,
  body,
  expect,
  headers,
  connections,
  warmupSeconds,
  seconds,
});

// The same work everywhere: batch_sum of [1..10]; each generator checks one answer first.
const sum = { count: numbers.length, total: 55 };
await http('raw node:http', '—', [bench('targets/raw.ts')], {}, (url) =>
  httpPlan(url, '/', { fixed: { numbers } }, sum),
);
await http('tRPC v11 standalone (unsigned)', '—', [bench('targets/trpc.ts')], {}, (url) =>
  httpPlan(url, '/batch_sum', { fixed: { numbers } }, { result: { data: sum } }),
);
// Stateless Streamable HTTP needs no initialize; a call without an mcp-protocol-version header
// is taken as the SDK's default version, so the header is sent as a real client would after
// negotiating.
await http('MCP SDK, stateless Streamable HTTP', '—', [bench('targets/mcp.ts')], {}, (url) =>
  httpPlan(
    url,
    '/',
    {
      fixed: {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'batch_sum', arguments: { numbers } },
      },
    },
    { jsonrpc: '2.0', id: 1, result: { structuredContent: sum } },
    { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
  ),
);
const signedBatchSum = { signed: clients, tool: 'batch_sum', args: { numbers } };
const signedSum = { result: { data: { ok: true, status: 'ok', result: sum } } };
await http(
  'Signet, signed (pnpm serve)',
  'sqlite (default)',
  shippedServer,
  shippedEnv(`sqlite:${join(dir, 'serve.db')}`),
  (url) => httpPlan(url, '/trpc/batch_sum', signedBatchSum, signedSum),
);
const haveRedis = redisAnswers();
// The Redis targets' own namespace: they meet no real deployment's keys and leave none behind.
const namespace = `signet-bench-${process.pid}`;
if (haveRedis) {
  await http(
    'Signet, signed (pnpm serve)',
    'redis',
    shippedServer,
    { ...shippedEnv(redisUrl), SIGNET_NAMESPACE: namespace },
    (url) => httpPlan(url, '/trpc/batch_sum', signedBatchSum, signedSum),
  );
  await dropNamespace(redisUrl, namespace);
} else {
  notes.push(`Redis rows skipped: no Redis answered at ${redisUrl}.`);
}

async function jobs(target: string, store: string, env: NodeJS.ProcessEnv) {
  console.error(`bench: ${target} (${store})…`);
  const result = await withTarget([bench('targets/jobs.ts')], env, (p) =>
    load({
      kind: 'signet-jobs',
      url: p.url,
      credentials,
      concurrency: connections,
      warmupSeconds,
      seconds,
    }),
  );
  rows.push({ target, store, unit: 'jobs/s', result });
}
await jobs('Signet job round trip', 'sqlite (default)', {
  BENCH_STORE: `sqlite:${join(dir, 'jobs.db')}`,
  BENCH_KEYRING: keyringPath,
});
if (haveRedis) {
  await jobs('Signet job round trip', 'redis + BullMQ', {
    BENCH_STORE: redisUrl,
    BENCH_KEYRING: keyringPath,
    BENCH_NAMESPACE: namespace,
  });
  await dropNamespace(redisUrl, namespace);
  console.error('bench: bare BullMQ…');
  const queue = `bench-bare-${process.pid}`;
  const bare = await withTarget(
    [bench('targets/bullmq-worker.ts')],
    { BENCH_REDIS: redisUrl, BENCH_QUEUE: queue },
    () =>
      load({
        kind: 'bullmq',
        redis: redisUrl,
        queue,
        concurrency: connections,
        warmupSeconds,
        seconds,
      }),
    WORKER_READY,
  );
  rows.push({
    target: 'bare BullMQ add → completed',
    store: 'redis',
    unit: 'jobs/s',
    result: bare,
  });
}

console.error(`bench: memory over ${memoryRequests} signed requests and ${memoryJobs} jobs…`);
const memory: Memory = await withTarget(
  shippedServer,
  shippedEnv(`sqlite:${join(dir, 'memory.db')}`),
  async (p) => {
    const before = rssMb(p.child.pid!);
    const { seconds: _, ...plan } = httpPlan(p.url, '/trpc/batch_sum', signedBatchSum, signedSum);
    const result = await load({ ...plan, amount: memoryRequests, warmupSeconds: 0 });
    return { before, after: rssMb(p.child.pid!), count: result.total, errors: result.errors };
  },
);
const jobMemory: Memory = await withTarget(
  [bench('targets/jobs.ts')],
  { BENCH_STORE: `sqlite:${join(dir, 'job-memory.db')}`, BENCH_KEYRING: keyringPath },
  async (p) => {
    const before = rssMb(p.child.pid!);
    const result = await load({
      kind: 'signet-jobs',
      url: p.url,
      credentials,
      concurrency: connections,
      warmupSeconds: 0,
      amount: memoryJobs,
    });
    return { before, after: rssMb(p.child.pid!), count: result.total, errors: result.errors };
  },
);

const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
report({
  date: new Date().toISOString(),
  machine: `nproc ${availableParallelism()}, ${cpuModel ?? 'unknown CPU'}, Node ${process.version}`,
  command: quick ? 'pnpm bench --quick' : 'pnpm bench',
  settings: { connections, seconds, warmupSeconds },
  rows,
  memory: { server: memory, jobServer: jobMemory },
  notes,
});
rmSync(dir, { recursive: true, force: true });
process.exit(0);

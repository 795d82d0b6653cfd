// `pnpm bench [--quick]`: every target on loopback, one at a time, driven by a load generator in
// a process of its own; one table at the end, also written to results/latest.json and
// BENCHMARKS.md.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyringFile } from '@signet/server';
import {
  LISTENING,
  repoRoot,
  type ServerProcess,
  startProcess,
  WORKER_READY,
} from '@signet/server/testing';
import type { Credentials, LoadPlan, LoadResult } from './load.ts';

const quick = process.argv.includes('--quick');
const seconds = quick ? 4 : 10;
const warmupSeconds = quick ? 1 : 2;
const connections = 32;
const memoryRequests = quick ? 100_000 : 1_000_000;
const memoryJobs = quick ? 10_000 : 100_000;
const redisUrl = process.env.SIGNET_BENCH_REDIS ?? 'redis://127.0.0.1:6379';
const numbers = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

const dir = mkdtempSync(join(tmpdir(), 'signet-bench-'));
const keyringFile = generateKeyringFile({ serverId: 'bench-server', clientIds: ['bench'] });
const keyringPath = join(dir, 'keyring.json');
writeFileSync(keyringPath, JSON.stringify(keyringFile));
const credentials: Credentials = {
  serverId: keyringFile.server_id,
  clientId: 'bench',
  key: keyringFile.clients[0]!.keys[0]!,
};

const tsx = ['--import', 'tsx'];
const bench = (file: string) => join(repoRoot, 'apps/bench/src', file);

function load(plan: LoadPlan): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...tsx, bench('load.ts'), JSON.stringify(plan)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && line.startsWith('{')) resolve(JSON.parse(line) as LoadResult);
      else reject(new Error(`load generator exited with ${code}: ${out}`));
    });
  });
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

function redisAnswers(): boolean {
  try {
    return (
      execFileSync('redis-cli', ['-u', redisUrl, 'ping'], { encoding: 'utf8' }).trim() === 'PONG'
    );
  } catch {
    return false;
  }
}

async function withTarget<T>(
  args: string[],
  env: NodeJS.ProcessEnv,
  run: (p: ServerProcess) => Promise<T>,
  ready = LISTENING,
) {
  const target = await startProcess(process.execPath, [...tsx, ...args], env, 30_000, ready);
  try {
    return await run(target);
  } finally {
    await target.kill('SIGKILL');
  }
}

const shippedServer = ['apps/server/src/cli.ts', 'serve'];
const shippedEnv = (store: string) => ({
  SIGNET_PORT: '0',
  SIGNET_KEYRING: keyringPath,
  SIGNET_STORE: store,
  SIGNET_LOG_LEVEL: 'warn',
});

interface Row {
  target: string;
  store: string;
  unit: 'req/s' | 'jobs/s';
  result: LoadResult;
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

const httpPlan = (
  url: string,
  path: string,
  body: Extract<LoadPlan, { kind: 'http' }>['body'],
  headers?: Record<string, string>,
): LoadPlan => ({
  kind: 'http',
  url,
  path,
  body,
  headers,
  connections,
  warmupSeconds,
  seconds,
});

await http('raw node:http', '—', [bench('targets/raw.ts')], {}, (url) =>
  httpPlan(url, '/', { fixed: { numbers } }),
);
await http('tRPC v11 standalone (unsigned)', '—', [bench('targets/trpc.ts')], {}, (url) =>
  httpPlan(url, '/batch_sum', { fixed: { numbers } }),
);
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
    { accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' },
  ),
);
const signedBatchSum = { signed: credentials, tool: 'batch_sum', args: { numbers } };
await http(
  'Signet, signed (pnpm serve)',
  'sqlite (default)',
  shippedServer,
  shippedEnv(`sqlite:${join(dir, 'serve.db')}`),
  (url) => httpPlan(url, '/trpc/batch_sum', signedBatchSum),
);
const haveRedis = redisAnswers();
if (haveRedis) {
  await http('Signet, signed (pnpm serve)', 'redis', shippedServer, shippedEnv(redisUrl), (url) =>
    httpPlan(url, '/trpc/batch_sum', signedBatchSum),
  );
} else {
  notes.push(`Redis rows skipped: no Redis answered at ${redisUrl}.`);
}

async function jobs(target: string, store: string, env: NodeJS.ProcessEnv) {
  console.error(`bench: ${target} (${store})…`);
  const result = await withTarget([bench('targets/jobs.ts')], env, (p) =>
    load({ kind: 'signet-jobs', url: p.url, credentials, concurrency: connections, seconds }),
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
  });
  console.error('bench: bare BullMQ…');
  const queue = `bench-bare-${process.pid}`;
  const bare = await withTarget(
    [bench('targets/bullmq-worker.ts')],
    { BENCH_REDIS: redisUrl, BENCH_QUEUE: queue },
    () => load({ kind: 'bullmq', redis: redisUrl, queue, concurrency: connections, seconds }),
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
const memory = await withTarget(
  shippedServer,
  shippedEnv(`sqlite:${join(dir, 'memory.db')}`),
  async (p) => {
    const before = rssMb(p.child.pid!);
    await load({
      ...(httpPlan(p.url, '/trpc/batch_sum', signedBatchSum) as Extract<
        LoadPlan,
        { kind: 'http' }
      >),
      seconds: undefined,
      amount: memoryRequests,
      warmupSeconds: 0,
    });
    return { before, after: rssMb(p.child.pid!) };
  },
);
const jobMemory = await withTarget(
  [bench('targets/jobs.ts')],
  { BENCH_STORE: `sqlite:${join(dir, 'job-memory.db')}`, BENCH_KEYRING: keyringPath },
  async (p) => {
    const before = rssMb(p.child.pid!);
    let done = 0;
    while (done < memoryJobs) {
      done += (
        await load({
          kind: 'signet-jobs',
          url: p.url,
          credentials,
          concurrency: connections,
          seconds: 2,
        })
      ).total;
    }
    return { before, after: rssMb(p.child.pid!), jobs: done };
  },
);

// The table.
const raw = rows.find((r) => r.target === 'raw node:http')!.result.perSecond;
const bareJobs = rows.find((r) => r.target.startsWith('bare BullMQ'))?.result.perSecond;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const lines = [
  '| target | store | throughput | p50 ms | p99 ms | ratio | errors |',
  '|---|---|---:|---:|---:|---:|---:|',
  ...rows.map((r) => {
    const base = r.unit === 'req/s' ? raw : bareJobs;
    const ratio = base
      ? `${fmt(r.result.perSecond / base, 2)}× ${r.unit === 'req/s' ? 'raw' : 'bare BullMQ'}`
      : '—';
    return `| ${r.target} | ${r.store} | ${fmt(r.result.perSecond)} ${r.unit} | ${fmt(r.result.p50, 2)} | ${fmt(r.result.p99, 2)} | ${ratio} | ${r.result.errors} |`;
  }),
];
const mcp = rows.find((r) => r.target.startsWith('MCP'))!.result.perSecond;
const signet = rows.find(
  (r) => r.target.startsWith('Signet, signed') && r.store.startsWith('sqlite'),
)!.result.perSecond;
const summary = [
  `Signet signed calls: ${fmt((signet / raw) * 100)}% of raw node:http, ${fmt(signet / mcp, 1)}× the MCP SDK.`,
  `Memory, shipped server (sqlite): RSS ${fmt(memory.before)} MB → ${fmt(memory.after)} MB after ${fmt(memoryRequests)} signed requests (+${fmt(memory.after - memory.before)} MB).`,
  `Memory, job server (sqlite): RSS ${fmt(jobMemory.before)} MB → ${fmt(jobMemory.after)} MB after ${fmt(jobMemory.jobs)} jobs (+${fmt(jobMemory.after - jobMemory.before)} MB).`,
  ...notes,
];
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
const command = quick ? 'pnpm bench --quick' : 'pnpm bench';
console.log(
  [
    '',
    ...lines,
    '',
    ...summary,
    '',
    `${machine}; ${command}; ${connections} connections, ${seconds} s per target after ${warmupSeconds} s warm-up.`,
  ].join('\n'),
);

writeFileSync(
  join(repoRoot, 'apps/bench/results/latest.json'),
  `${JSON.stringify({ date: new Date().toISOString(), machine, command, rows, memory, jobMemory, notes }, null, 2)}\n`,
);
// BENCHMARKS.md keeps its own prose; only the part between the markers is rewritten.
const results = `<!-- results:start -->
Measured with \`${command}\` on ${machine}, ${new Date().toISOString().slice(0, 10)}.

${lines.join('\n')}

${summary.map((s) => `- ${s}`).join('\n')}
<!-- results:end -->`;
const benchmarksPath = join(repoRoot, 'BENCHMARKS.md');
const previous = readFileSync(benchmarksPath, 'utf8');
writeFileSync(
  benchmarksPath,
  previous.replace(/<!-- results:start -->[\s\S]*<!-- results:end -->/, results),
);
process.exit(0);

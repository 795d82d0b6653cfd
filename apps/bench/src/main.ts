// `pnpm bench [--quick] [--worker-concurrency N]`: every target on loopback, driven by a load
// generator in a process of its own, the targets of each table section taking turns in short
// slices; one table at the end, also written to results/latest.json and the results block of
// BENCHMARKS.md. `pnpm bench --render` only rewrites that block from latest.json.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ServerProcess, WORKER_READY } from '@signet/server/testing';
import { iJsonCostNote } from './check-cost.ts';
import {
  bench,
  benchKeyring,
  dropNamespace,
  dropQueue,
  rssMb,
  shippedEnv as shippedEnvFor,
  shippedServer,
  spawnTarget,
  startGenerator,
  TICK_US,
  treeCpuUs,
  withTarget,
} from './harness.ts';
import type { LoadPlan, LoadResult } from './load.ts';
import { type Memory, type Results, type Row, report, resultsPath } from './report.ts';

if (process.argv.includes('--render')) {
  report(JSON.parse(readFileSync(resultsPath, 'utf8')) as Results, { save: false });
  process.exit(0);
}

/** `--name N` or `--name=N` (a whole number from 1 to 1000), or undefined when absent. */
function flagValue(name: string): number | undefined {
  const at = process.argv.findIndex((arg) => arg === name || arg.startsWith(`${name}=`));
  if (at === -1) return undefined;
  const arg = process.argv[at]!;
  const value = Number(arg === name ? process.argv[at + 1] : arg.slice(name.length + 1));
  if (!Number.isInteger(value) || value < 1 || value > 1_000) {
    console.error(`bench: ${name} takes a whole number from 1 to 1000`);
    process.exit(2);
  }
  return value;
}

const quick = process.argv.includes('--quick');
const seconds = quick ? 4 : 10;
// (Before a target's first slice; a cold server warmed for 1 s showed 0.44× bare BullMQ where it
// shows 0.54× warmed for 2 s, in --quick runs taking 90 s either way.)
const warmupSeconds = 2;
/** Before each of a target's later slices (it is warm; only its connections are new). */
const rewarmSeconds = 0.5;
/**
 * Each target's seconds are measured in slices of one second, taking turns with the others: this
 * VM loses from nothing to over 80% of its CPU to the host (steal) from a few seconds to the next,
 * and the median of many short slices passes over the worst of them where a mean of few long ones
 * cannot (see BENCHMARKS.md).
 */
const slice = 1;
const rounds = seconds / slice;
const connections = 32;
/**
 * The job workers' concurrency (Signet's and bare BullMQ's alike): by default one slot per
 * connection, so that every job in flight can run at once. `--worker-concurrency N` sets it.
 * A BullMQ worker with slots to spare takes each job with a round trip of its own, one with
 * every slot busy gets the next job as it completes one: the setting moves the BullMQ rows
 * (see BENCHMARKS.md).
 */
const workerConcurrency = flagValue('--worker-concurrency') ?? connections;
/** What every job target's environment carries of it. */
const workerEnv = { BENCH_WORKER_CONCURRENCY: String(workerConcurrency) };
const memoryRequests = quick ? 100_000 : 1_000_000;
const memoryJobs = quick ? 10_000 : 100_000;
const redisUrl = process.env.SIGNET_BENCH_REDIS ?? 'redis://127.0.0.1:6379';
const numbers = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

const dir = mkdtempSync(join(tmpdir(), 'signet-bench-'));
const { keyringPath, credentials, clients, ed25519Clients } = benchKeyring(dir);
/** The shipped server on `store`, its audit log on (the default) in a folder of its own, or off. */
const shippedEnv = (store: string, audit: 'on' | 'off' = 'on') =>
  shippedEnvFor(keyringPath, store, audit === 'off' ? 'off' : mkdtempSync(join(dir, 'audit-')));

/** Redis's process id, if that process is on this machine (not in a container or elsewhere). */
function redisProcess(): number | undefined {
  const info = execFileSync('redis-cli', ['-u', redisUrl, 'info', 'server'], { encoding: 'utf8' });
  const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
  const comm = `/proc/${pid}/comm`;
  const local =
    Number.isInteger(pid) && existsSync(comm) && /redis/.test(readFileSync(comm, 'utf8'));
  return local ? pid : undefined;
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

/**
 * Core-seconds the host has taken from this VM so far (steal, from /proc/stat): how much of each
 * slice the VM did not run at all, which the results report.
 */
function stolen(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
  return (Number(cpu[8] ?? 0) * TICK_US) / 1e6;
}
/** Each slice's steal, as a share of the machine's CPU time in it. */
const steal: number[] = [];
const generator = startGenerator();

const rows: Row[] = [];
const notes: string[] = [iJsonCostNote(credentials, { numbers })];

/** A target of the table: how to start it, and the load that drives it for one slice. */
interface Target {
  target: string;
  store: string;
  unit: Row['unit'];
  args: string[];
  env: NodeJS.ProcessEnv;
  /** What the target prints once it serves (default: its `listening on` line). */
  ready?: RegExp;
  plan: (url: string, length: { seconds: number }) => LoadPlan;
  /** Whether it runs on Redis (whose CPU time is then counted as the target's). */
  redis?: boolean;
  /** Removes what the target left in Redis. */
  cleanup?: () => Promise<void>;
}

/**
 * Measures `targets` side by side: all of them are started, then each is driven for one slice in
 * turn, `rounds` times over, so that this VM's drift in speed (minute to minute, up to ±20%)
 * falls on every target alike instead of on whichever ran in a slow minute. Throughput is the
 * median of the slices' rates, and so are p50 and p99 of the slices' values.
 */
async function sideBySide(targets: Target[]) {
  const running: ServerProcess[] = [];
  try {
    for (const t of targets) {
      console.error(`bench: starting ${t.target} (${t.store})…`);
      running.push(await spawnTarget(t.args, t.env, t.ready));
    }
    const slices: LoadResult[][] = targets.map(() => []);
    const cpuPerOp: number[][] = targets.map(() => []);
    for (let round = 0; round < rounds; round++) {
      console.error(`bench: round ${round + 1} of ${rounds}…`);
      for (const [i, t] of targets.entries()) {
        const url = running[i]!.url;
        const warmup = round === 0 ? warmupSeconds : rewarmSeconds;
        await generator.run(t.plan(url, { seconds: warmup }));
        // What the target (and Redis, if it uses it) spends in the measured slice alone.
        const pids = [running[i]!.child.pid!, ...(t.redis && redisPid ? [redisPid] : [])];
        const cpuUs = () => pids.reduce((n, pid) => n + treeCpuUs(pid), 0);
        const cpuBefore = cpuUs();
        const stealBefore = stolen();
        const started = performance.now();
        const result = await generator.run(t.plan(url, { seconds: slice }));
        const wall = (performance.now() - started) / 1000;
        steal.push((stolen() - stealBefore) / (wall * availableParallelism()));
        const cpu = cpuUs() - cpuBefore;
        slices[i]!.push(result);
        cpuPerOp[i]!.push(cpu / Math.max(1, result.total));
      }
    }
    for (const [i, t] of targets.entries()) {
      rows.push({
        target: t.target,
        store: t.store,
        unit: t.unit,
        result: combine(slices[i]!),
        cpuPerOp: median(cpuPerOp[i]!),
      });
    }
  } finally {
    for (const p of running) await p.kill('SIGKILL');
    for (const t of targets) await t.cleanup?.();
  }
}

function median(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function combine(slices: LoadResult[]): LoadResult {
  const sum = (pick: (r: LoadResult) => number) => slices.reduce((n, r) => n + pick(r), 0);
  return {
    perSecond: median(slices.map((r) => r.perSecond)),
    p50: median(slices.map((r) => r.p50)),
    p99: median(slices.map((r) => r.p99)),
    total: sum((r) => r.total),
    errors: sum((r) => r.errors),
  };
}

type HttpPlan = Extract<LoadPlan, { kind: 'http' }>;
const httpTarget = (
  target: string,
  store: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  path: string,
  body: HttpPlan['body'],
  expect: unknown,
  headers?: Record<string, string>,
): Target => ({
  target,
  store,
  unit: 'req/s',
  args,
  env,
  plan: (url, length) => ({
    kind: 'http',
    url,
    path,
    body,
    expect,
    headers,
    connections,
    ...length,
  }),
});

// The same work everywhere: batch_sum of [1..10]; each generator checks one answer first.
const sum = { count: numbers.length, total: 55 };
const signedBatchSum = { signed: clients, tool: 'batch_sum', args: { numbers } };
const signedSum = { result: { data: { ok: true, status: 'ok', result: sum } } };
// The same call signed with Ed25519 keys, answered with the server key s1.
const ed25519BatchSum = { signed: ed25519Clients, tool: 'batch_sum', args: { numbers } };
const ed25519Sum = { result: { data: { ok: true, status: 'ok', result: sum, kid: 's1' } } };
const haveRedis = redisAnswers();
/** Redis's own process, when it runs on this machine (its CPU time counts for the Redis targets). */
const redisPid = haveRedis ? redisProcess() : undefined;
if (haveRedis && !redisPid) {
  notes.push(`Redis runs outside this machine: its CPU time is not in the Redis rows' CPU µs/op.`);
}
if (!haveRedis) notes.push(`Redis rows skipped: no Redis answered at ${redisUrl}.`);
// The Redis targets' own namespace: they meet no real deployment's keys and leave none behind.
const namespace = `signet-bench-${process.pid}`;
const dropBenchNamespace = () => dropNamespace(redisUrl, namespace);

await sideBySide([
  httpTarget('raw node:http', '—', [bench('targets/raw.ts')], {}, '/', { fixed: { numbers } }, sum),
  httpTarget(
    'tRPC v11 standalone (unsigned)',
    '—',
    [bench('targets/trpc.ts')],
    {},
    '/batch_sum',
    { fixed: { numbers } },
    { result: { data: sum } },
  ),
  // Stateless Streamable HTTP needs no initialize; a call without an mcp-protocol-version header
  // is taken as the SDK's default version, so the header is sent as a real client would after
  // negotiating.
  httpTarget(
    'MCP SDK, stateless Streamable HTTP',
    '—',
    [bench('targets/mcp.ts')],
    {},
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
  httpTarget(
    'Signet, signed (pnpm serve)',
    'sqlite (default)',
    shippedServer,
    shippedEnv(`sqlite:${join(dir, 'serve.db')}`),
    '/trpc/batch_sum',
    signedBatchSum,
    signedSum,
  ),
  httpTarget(
    'Signet, signed, audit log off',
    'sqlite (default)',
    shippedServer,
    shippedEnv(`sqlite:${join(dir, 'serve-no-audit.db')}`, 'off'),
    '/trpc/batch_sum',
    signedBatchSum,
    signedSum,
  ),
  httpTarget(
    'Signet, signed Ed25519 (pnpm serve)',
    'sqlite (default)',
    shippedServer,
    shippedEnv(`sqlite:${join(dir, 'serve-ed25519.db')}`),
    '/trpc/batch_sum',
    ed25519BatchSum,
    ed25519Sum,
  ),
  ...(haveRedis
    ? [
        {
          ...httpTarget(
            'Signet, signed (pnpm serve)',
            'redis',
            shippedServer,
            { ...shippedEnv(redisUrl), SIGNET_NAMESPACE: namespace },
            '/trpc/batch_sum',
            signedBatchSum,
            signedSum,
          ),
          redis: true,
          cleanup: dropBenchNamespace,
        },
      ]
    : []),
]);

const jobTarget = (store: string, env: NodeJS.ProcessEnv): Target => ({
  target: 'Signet job round trip',
  store,
  unit: 'jobs/s',
  args: [bench('targets/jobs.ts')],
  env: { ...env, ...workerEnv, BENCH_KEYRING: keyringPath },
  plan: (url, length) => ({
    kind: 'signet-jobs',
    url,
    credentials,
    concurrency: connections,
    ...length,
  }),
});
const bareQueue = `bench-bare-${process.pid}`;
await sideBySide([
  jobTarget('sqlite (default)', { BENCH_STORE: `sqlite:${join(dir, 'jobs.db')}` }),
  ...(haveRedis
    ? [
        {
          ...jobTarget('redis + BullMQ', { BENCH_STORE: redisUrl, BENCH_NAMESPACE: namespace }),
          redis: true,
          cleanup: dropBenchNamespace,
        },
        {
          target: 'bare BullMQ add → completed',
          store: 'redis',
          unit: 'jobs/s',
          args: [bench('targets/bullmq-worker.ts')],
          env: { ...workerEnv, BENCH_REDIS: redisUrl, BENCH_QUEUE: bareQueue },
          ready: WORKER_READY,
          plan: (_url, length) => ({
            kind: 'bullmq',
            redis: redisUrl,
            queue: bareQueue,
            concurrency: connections,
            ...length,
          }),
          redis: true,
          cleanup: () => dropQueue(redisUrl, bareQueue),
        } satisfies Target,
      ]
    : []),
]);

console.error(`bench: memory over ${memoryRequests} signed requests and ${memoryJobs} jobs…`);
const memory: Memory = await withTarget(
  shippedServer,
  shippedEnv(`sqlite:${join(dir, 'memory.db')}`),
  async (p) => {
    const before = rssMb(p.child.pid!);
    const result = await generator.run({
      kind: 'http',
      url: p.url,
      path: '/trpc/batch_sum',
      body: signedBatchSum,
      expect: signedSum,
      connections,
      amount: memoryRequests,
    });
    return { before, after: rssMb(p.child.pid!), count: result.total, errors: result.errors };
  },
);
const jobMemory: Memory = await withTarget(
  [bench('targets/jobs.ts')],
  { ...workerEnv, BENCH_STORE: `sqlite:${join(dir, 'job-memory.db')}`, BENCH_KEYRING: keyringPath },
  async (p) => {
    const before = rssMb(p.child.pid!);
    const result = await generator.run({
      kind: 'signet-jobs',
      url: p.url,
      credentials,
      concurrency: connections,
      amount: memoryJobs,
    });
    return { before, after: rssMb(p.child.pid!), count: result.total, errors: result.errors };
  },
);

const cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
report({
  date: new Date().toISOString(),
  machine: `nproc ${availableParallelism()}, ${cpuModel ?? 'unknown CPU'}, Node ${process.version}`,
  command: [
    'pnpm bench',
    ...(quick ? ['--quick'] : []),
    ...(workerConcurrency === connections ? [] : [`--worker-concurrency ${workerConcurrency}`]),
  ].join(' '),
  settings: { connections, workerConcurrency, seconds, warmupSeconds, rewarmSeconds, rounds },
  steal: { median: median(steal), max: Math.max(...steal) },
  rows,
  memory: { server: memory, jobServer: jobMemory },
  notes,
});
generator.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);

// `pnpm soak [--minutes N]`: runs the soak's mixed load (mix.ts) for N minutes against the server
// as `pnpm serve` starts it, on the store that SIGNET_STORE names, samples the server's memory,
// descriptors and store every few seconds, and exits 1 if any operation had an outcome it should
// not have, or if the server grew past the bounds once warm (growth.ts). It writes the plot of
// RSS and heap to benchmarks/soak-<store>.svg. Not part of `pnpm test`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '@signet/server/testing';
import {
  bench,
  benchKeyring,
  dropNamespace,
  shippedEnv,
  shippedServer,
  spawnTarget,
} from '../harness.ts';
import { parseSoakArgs, soakStore, USAGE, UsageError } from './args.ts';
import {
  BOUNDS,
  growthOf,
  lastLine,
  pastBounds,
  type Sample,
  sampleEverySeconds,
  windowsFor,
} from './growth.ts';
import { CALL_LOOPS, CALLS_PER_SECOND, JOB_LOOPS, runMix } from './mix.ts';
import { outcomeLines, sampleHeader, sampleRow, soakChart, windowLines } from './report.ts';
import { memoryGauge, readProcess, redisGauge, type StoreGauge, sqliteGauge } from './sampler.ts';
import { Tally } from './tally.ts';

let options: ReturnType<typeof parseSoakArgs>;
let store: ReturnType<typeof soakStore>;
try {
  options = parseSoakArgs(process.argv.slice(2));
  store = soakStore(process.env.SIGNET_STORE);
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  console.error(`soak: ${error.message}\n${USAGE}`);
  process.exit(2);
}

const runSeconds = options.minutes * 60;
const every = sampleEverySeconds(runSeconds);
const windows = windowsFor(runSeconds);
const bounds = BOUNDS[store.kind];
const dir = mkdtempSync(join(tmpdir(), 'signet-soak-'));
const { keyringPath, clients } = benchKeyring(dir, 4);
const probeFile = join(dir, 'probe.json');
// The Redis store's own namespace: the soak meets no real deployment's keys and leaves none.
const namespace = `signet-soak-${process.pid}`;
// Jobs and nonces are kept this long (unless set): short enough that the store reaches its
// steady size within the warm-up of a short run, so that what grows after it is a leak.
const retentionMs = process.env.SIGNET_RETENTION_MS || '30000';
const windowMs = process.env.SIGNET_WINDOW_MS || '30000';

let storeUrl: string;
let gauge: StoreGauge;
let where: string;
switch (store.kind) {
  case 'sqlite': {
    const path = store.path ?? join(dir, 'soak.db');
    storeUrl = `sqlite:${path}`;
    gauge = sqliteGauge(path);
    where = path;
    break;
  }
  case 'memory':
    storeUrl = 'memory:';
    gauge = memoryGauge;
    where = 'the server process';
    break;
  case 'redis':
    storeUrl = store.url;
    gauge = redisGauge(store.url, namespace);
    where = `namespace ${namespace}`;
    break;
}

const server = await spawnTarget(
  ['--import', pathToFileURL(bench('soak/probe.ts')).href, ...shippedServer],
  {
    // (The audit log off: over hours it would fill the disk the soak measures nothing of.)
    ...shippedEnv(keyringPath, storeUrl, 'off'),
    SIGNET_NAMESPACE: namespace,
    SIGNET_RETENTION_MS: retentionMs,
    SIGNET_WINDOW_MS: windowMs,
    SOAK_PROBE_FILE: probeFile,
  },
);
const pid = server.child.pid!;

const problems: string[] = [];
const t0 = performance.now();
let stopAt = t0 + runSeconds * 1000;
let finishing = false;
server.child.once('exit', (code, signal) => {
  if (finishing) return;
  problems.push(`the server exited during the run (${code ?? signal})`);
  stopAt = 0;
});
process.once('SIGINT', () => {
  problems.push('interrupted (SIGINT): the run is shorter than asked');
  stopAt = performance.now();
});
const over = () => performance.now() >= stopAt;
const elapsed = () => (performance.now() - t0) / 1000;

console.log(
  `soak: ${options.minutes} min on ${store.kind} (${where}), server pid ${pid} at ${server.url}; ` +
    `${clients.length} clients, ${CALL_LOOPS} call loops at up to ${CALLS_PER_SECOND} calls/s, ` +
    `${JOB_LOOPS} job loops; job retention ${retentionMs} ms, freshness window ${windowMs} ms; ` +
    `a sample every ${every} s`,
);
console.log(sampleHeader(bounds.storeUnit));

const tally = new Tally();
const load = runMix({ url: server.url, clients, tally, over });

const samples: Sample[] = [];
let previous = { t: 0, completed: 0, seq: 0 };
async function takeSample() {
  const t = elapsed();
  const p = await readProcess(pid, probeFile, previous.seq);
  const size = await gauge.read();
  const s: Sample = {
    t,
    rssMb: p.rssMb,
    heapUsedMb: p.heapUsedMb,
    heapLiveMb: p.heapLiveMb,
    fds: p.fds,
    resources: p.activeResources,
    store: size,
    opsPerSecond: t > previous.t ? (tally.completed - previous.completed) / (t - previous.t) : 0,
  };
  previous = { t, completed: tally.completed, seq: p.seq };
  samples.push(s);
  console.log(sampleRow(s, windows, bounds.storeUnit));
}

for (let tick = 0; tick * every <= runSeconds + 1e-9 && stopAt !== 0; tick++) {
  const wait = t0 + tick * every * 1000 - performance.now();
  if (wait > 0) await sleep(wait);
  try {
    await takeSample();
  } catch (error) {
    problems.push(`a sample failed: ${error instanceof Error ? error.message : String(error)}`);
    break;
  }
  if (over()) break;
}
stopAt = Math.min(stopAt, performance.now());

// Every operation is under a timeout of its own; this only keeps a bug in the mix from hanging.
const drained = await Promise.race([load.then(() => true), sleep(90_000, false)]);
if (!drained)
  problems.push(`operations still in flight after 90 s: ${JSON.stringify(tally.inFlight())}`);

finishing = true;
const exited = await Promise.race([server.kill('SIGTERM').then(() => true), sleep(15_000, false)]);
if (!exited) {
  problems.push('the server did not stop within 15 s of SIGTERM');
  await server.kill('SIGKILL');
} else if (server.child.exitCode !== 0 && !problems.some((p) => p.startsWith('the server'))) {
  problems.push(
    `the server exited with ${server.child.exitCode ?? server.child.signalCode} on SIGTERM`,
  );
}
gauge.close();
if (store.kind === 'redis') await dropNamespace(store.url, namespace);
rmSync(dir, { recursive: true, force: true });

const growth = growthOf(samples, runSeconds);
const past = pastBounds(growth, bounds);
const unexpected = tally.unexpected();
const logged = server
  .output()
  .split('\n')
  .filter((line) => /"level":(40|50|60)/.test(line));

console.log('\nsoak: operations');
for (const line of outcomeLines(tally)) console.log(`  ${line}`);
for (const u of unexpected) {
  problems.push(
    `${u.count}× unexpected "${u.outcome}" in ${u.kind}, e.g. ${u.example.slice(0, 200)}`,
  );
}
if (logged.length > 0) {
  console.log(
    `soak: the server logged ${logged.length} warnings or errors; the first:\n  ${logged[0]!.slice(0, 400)}`,
  );
}
console.log('soak: growth once warm');
for (const line of windowLines(growth, bounds)) console.log(`  ${line}`);

const finalLine = lastLine(growth, bounds);
const outFile = join(repoRoot, 'benchmarks', `soak-${store.kind}.svg`);
mkdirSync(join(repoRoot, 'benchmarks'), { recursive: true });
const machine = `nproc ${availableParallelism()}, Node ${process.version}`;
writeFileSync(
  outFile,
  soakChart(
    samples,
    growth,
    bounds,
    `pnpm soak --minutes ${options.minutes}, ${store.kind} store`,
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${machine}. Once warm: ${finalLine.slice('soak: '.length, finalLine.indexOf(' (bound'))}`,
  ),
);
console.log(`soak: plot written to ${relative(repoRoot, outFile)}`);

for (const problem of problems) console.log(`soak: FAILED: ${problem}`);
console.log(
  past.length > 0 ? `soak: PAST THE BOUND: ${past.join('; ')}` : 'soak: within the bound',
);
console.log(finalLine);
process.exit(problems.length > 0 || past.length > 0 ? 1 : 0);

// Where the shipped server's time goes:
// `node --conditions=@signet/source --import tsx apps/bench/src/profile.ts [seconds]` runs
// `pnpm serve` (SQLite, every check on) under `node --cpu-prof`, drives it with signed
// batch_sum calls from the load generator, stops it with SIGTERM (which writes the profile) and
// prints the functions with the most self time. `profile.ts <file.cpuprofile>` only summarizes.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { benchKeyring, load, shippedEnv, shippedServer, spawnTarget } from './harness.ts';

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }>;
  samples: number[];
  timeDeltas: number[];
}

/** Self time (µs) per function (name and place), largest first; and the profile's total. */
export function selfTimes(profile: CpuProfile) {
  const frameOf = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const byFunction = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    // A sample's time is the interval until the next one.
    const us = profile.timeDeltas[i + 1] ?? 0;
    const frame = frameOf.get(id)!;
    // (Lines of files that tsx compiled do not match the sources: those get the file only.)
    const line = frame.url.endsWith('.ts') ? '' : `:${frame.lineNumber + 1}`;
    const where = frame.url ? ` ${place(frame.url)}${line}` : '';
    const key = `${frame.functionName || '(anonymous)'}${where}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    total += us;
  });
  return { total, rows: [...byFunction].sort((a, b) => b[1] - a[1]) };
}

/** `pkg/file` for a dependency, `file` for node's own modules and the repository's files. */
function place(url: string): string {
  const dep =
    /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\/.*?([^/]+)$/.exec(url);
  return dep ? `${dep[1]}/${dep[2]}` : basename(url);
}

function summarize(file: string, top = Number(process.env.TOP ?? 15)) {
  const { total, rows } = selfTimes(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const idle = rows.find(([name]) => name === '(idle)')?.[1] ?? 0;
  console.log(
    `${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(((total - idle) / total) * 100).toFixed(0)}% busy\n`,
  );
  console.log('| self ms | % of busy | function |\n|---:|---:|---|');
  for (const [name, us] of rows.filter(([name]) => name !== '(idle)').slice(0, top)) {
    console.log(
      `| ${(us / 1000).toFixed(0)} | ${((us / (total - idle)) * 100).toFixed(1)}% | \`${name}\` |`,
    );
  }
}

const arg = process.argv[2];
if (arg?.endsWith('.cpuprofile')) {
  summarize(arg);
} else {
  const seconds = Number(arg ?? 10);
  const dir = mkdtempSync(join(tmpdir(), 'signet-profile-'));
  const { keyringPath, clients } = benchKeyring(dir);
  const server = await spawnTarget(
    ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...shippedServer],
    shippedEnv(keyringPath, `sqlite:${join(dir, 'signet.db')}`, join(dir, 'audit')),
  );
  try {
    await load({
      kind: 'http',
      url: server.url,
      path: '/trpc/batch_sum',
      body: {
        signed: clients,
        tool: 'batch_sum',
        args: { numbers: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
      },
      expect: { result: { data: { ok: true, result: { count: 10, total: 55 } } } },
      connections: 32,
      seconds,
    });
  } finally {
    // SIGTERM: the server shuts down and exits, and node writes the profile on exit.
    await server.kill('SIGTERM');
  }
  const profile = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (!profile) throw new Error(`no .cpuprofile in ${dir}`);
  summarize(join(dir, profile));
}

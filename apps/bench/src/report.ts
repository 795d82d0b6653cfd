// The results of one run, as the table `pnpm bench` prints and as BENCHMARKS.md shows them.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@signet/server/testing';
import type { LoadResult } from './load.ts';

export interface Row {
  target: string;
  store: string;
  unit: 'req/s' | 'jobs/s';
  result: LoadResult;
  /**
   * CPU time (µs) per request or job of the target's processes, and of Redis for the targets on
   * Redis; not the load generator's. The median of the slices'.
   */
  cpuPerOp: number;
}

export interface Memory {
  before: number;
  after: number;
  /** How many signed requests (shipped server) or jobs (job server) completed in between. */
  count: number;
  errors: number;
}

export interface Results {
  date: string;
  machine: string;
  command: string;
  /**
   * `rounds`: the slices each target's seconds were measured in, the targets taking turns;
   * `warmupSeconds` before a target's first slice, `rewarmSeconds` before each later one.
   */
  settings: {
    connections: number;
    /** How many jobs each job worker runs at once. */
    workerConcurrency: number;
    seconds: number;
    warmupSeconds: number;
    rewarmSeconds: number;
    rounds: number;
  };
  /** The share of the machine's CPU time the host took from this VM (steal), per slice. */
  steal: { median: number; max: number };
  rows: Row[];
  memory: { server: Memory; jobServer: Memory };
  notes: string[];
}

export const resultsPath = join(repoRoot, 'apps/bench/results/latest.json');
const benchmarksPath = join(repoRoot, 'BENCHMARKS.md');

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** A markdown table with padded columns (so the file reads as a table too). */
function markdownTable(header: string[], rightAligned: boolean[], body: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (rightAligned[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (rightAligned[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(header), rule, ...body.map(line)];
}

export function render(results: Results): { table: string[]; summary: string[] } {
  const { rows } = results;
  const find = (match: (r: Row) => boolean) => rows.find(match)?.result.perSecond;
  const raw = find((r) => r.target === 'raw node:http');
  const bare = find((r) => r.target.startsWith('bare BullMQ'));
  const table = markdownTable(
    ['target', 'store', 'throughput', 'p50 ms', 'p99 ms', 'CPU µs/op', 'ratio', 'errors'],
    [false, false, true, true, true, true, true, true],
    rows.map((r) => {
      const base = r.unit === 'req/s' ? raw : bare;
      const ratio = base
        ? `${fmt(r.result.perSecond / base, 2)}× ${r.unit === 'req/s' ? 'raw' : 'bare BullMQ'}`
        : '—';
      return [
        r.target,
        r.store,
        `${fmt(r.result.perSecond)} ${r.unit}`,
        fmt(r.result.p50, 2),
        fmt(r.result.p99, 2),
        fmt(r.cpuPerOp),
        ratio,
        String(r.result.errors),
      ];
    }),
  );
  const mcp = find((r) => r.target.startsWith('MCP'));
  // The headline row: the shipped server as configured by default (SQLite, the audit log on).
  const auditOn = rows.find(
    (r) => r.target === 'Signet, signed (pnpm serve)' && r.store.startsWith('sqlite'),
  );
  const signet = auditOn?.result.perSecond;
  const auditOff = rows.find((r) => r.target === 'Signet, signed, audit log off');
  const memoryLine = (what: string, m: Memory, of: string) =>
    `Memory, ${what}: RSS ${fmt(m.before)} MB → ${fmt(m.after)} MB after ${fmt(m.count)} ${of} (+${fmt(m.after - m.before)} MB${m.errors ? `; ${fmt(m.errors)} errors` : ''}).`;
  const summary = [
    ...(signet && raw && mcp
      ? [
          `Signet signed calls: ${fmt((signet / raw) * 100)}% of raw node:http, ${fmt(signet / mcp, 1)}× the MCP SDK.`,
        ]
      : []),
    ...(auditOn && auditOff
      ? [
          `Audit log: with it on (the default), signed calls ran at ${fmt((auditOn.result.perSecond / auditOff.result.perSecond) * 100)}% of the throughput with it off, at ${fmt(auditOn.cpuPerOp)} vs ${fmt(auditOff.cpuPerOp)} CPU µs/op.`,
        ]
      : []),
    memoryLine('shipped server (sqlite)', results.memory.server, 'signed requests'),
    memoryLine('job server (sqlite)', results.memory.jobServer, 'jobs'),
    ...(results.steal.max >= 0.005
      ? [
          `Steal: the host took ${fmt(results.steal.median * 100)}% of this VM's CPU time in the median slice, ${fmt(results.steal.max * 100)}% in the worst.`,
        ]
      : []),
    ...results.notes,
  ];
  return { table, summary };
}

/** Prints the table, writes results/latest.json and the results block of BENCHMARKS.md. */
export function report(results: Results, { save = true } = {}) {
  const { table, summary } = render(results);
  const { connections, workerConcurrency, seconds, warmupSeconds, rewarmSeconds, rounds } =
    results.settings;
  const workers = `job workers at concurrency ${workerConcurrency}`;
  const cpu =
    "CPU µs/op: the CPU time of the target's processes (and of Redis, for the targets on Redis) per request or job, the load generator's not counted";
  const timing = `${seconds} s per target in ${rounds} slices of ${seconds / rounds} s, the targets taking turns, each figure the median of a target's slices; ${warmupSeconds} s of warm-up before a target's first slice, ${rewarmSeconds} s before the others`;
  console.log(
    [
      '',
      ...table,
      '',
      ...summary,
      '',
      `${results.machine}; ${results.command}; ${connections} connections, ${workers}, ${timing}. ${cpu}.`,
    ].join('\n'),
  );
  if (save) writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  // BENCHMARKS.md keeps its own prose; only the part between the markers is rewritten.
  const block = `<!-- results:start -->
Measured with \`${results.command}\` on ${results.machine}, ${results.date.slice(0, 10)}
(${connections} connections, ${workers}, ${timing}). ${cpu}.

${table.join('\n')}

${summary.map((s) => `- ${s}`).join('\n')}
<!-- results:end -->`;
  const previous = readFileSync(benchmarksPath, 'utf8');
  writeFileSync(
    benchmarksPath,
    previous.replace(/<!-- results:start -->[\s\S]*<!-- results:end -->/, block),
  );
}

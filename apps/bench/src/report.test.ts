import { describe, expect, it } from 'vitest';
import { type Results, type Row, render } from './report.ts';

const row = (
  target: string,
  unit: Row['unit'],
  perSecond: number,
  cpuPerOp: number,
  store = '—',
): Row => ({
  target,
  store,
  unit,
  result: { perSecond, p50: 1.5, p99: 9.25, total: perSecond * 10, errors: 0 },
  cpuPerOp,
});

const results = (steal: Results['steal']): Results => ({
  date: '2026-12-03T10:00:00.000Z',
  machine: 'nproc 2, a CPU, Node v20.20.2',
  command: 'pnpm bench',
  settings: {
    connections: 32,
    workerConcurrency: 32,
    seconds: 10,
    warmupSeconds: 2,
    rewarmSeconds: 0.5,
    rounds: 10,
  },
  steal,
  rows: [
    row('raw node:http', 'req/s', 20_000, 35),
    row('MCP SDK, stateless Streamable HTTP', 'req/s', 1_000, 1_075.4),
    row('Signet, signed (pnpm serve)', 'req/s', 12_000, 70.2, 'sqlite (default)'),
    row('Signet job round trip', 'jobs/s', 1_000, 1_233),
    row('bare BullMQ add → completed', 'jobs/s', 2_000, 468),
  ],
  memory: {
    server: { before: 120, after: 160, count: 1_000_000, errors: 0 },
    jobServer: { before: 120, after: 150, count: 100_000, errors: 0 },
  },
  notes: [],
});

describe('the results table', () => {
  it('gives each row its ratio to its own baseline, and its CPU time per operation', () => {
    const { table } = render(results({ median: 0, max: 0 }));
    const cells = (target: string) =>
      table
        .find((line) => line.startsWith(`| ${target} `))!
        .split('|')
        .map((cell) => cell.trim());
    expect(cells('Signet, signed (pnpm serve)')).toEqual(
      expect.arrayContaining(['12,000 req/s', '70', '0.60× raw']),
    );
    expect(cells('Signet job round trip')).toEqual(
      expect.arrayContaining(['1,000 jobs/s', '1,233', '0.50× bare BullMQ']),
    );
    expect(cells('MCP SDK, stateless Streamable HTTP')).toContain('1,075');
  });

  it('says how the signed calls compare, and how much the host took only when it took some', () => {
    const calm = render(results({ median: 0, max: 0.004 })).summary;
    expect(calm).toContain('Signet signed calls: 60% of raw node:http, 12.0× the MCP SDK.');
    expect(calm.some((line) => line.startsWith('Steal'))).toBe(false);
    const stolen = render(results({ median: 0.05, max: 0.41 })).summary;
    expect(stolen).toContain(
      "Steal: the host took 5% of this VM's CPU time in the median slice, 41% in the worst.",
    );
  });
});

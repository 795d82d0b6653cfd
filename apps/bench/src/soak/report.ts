// What the soak shows: a table row per sample as it is taken, the outcomes per kind of
// operation, the two windows' levels, and the plot of RSS and heap over time.
import { type Bounds, type Growth, phaseOf, type Sample, type Windows } from './growth.ts';
import { chartSvg } from './svg.ts';
import type { Tally } from './tally.ts';

const COLUMNS = [
  ['t s', 7],
  ['phase', 8],
  ['RSS MB', 8],
  ['heap MB', 8],
  ['live MB', 8],
  ['fds', 5],
  ['handles', 8],
  ['store', 10],
  ['ops/s', 7],
] as const;

export function sampleHeader(storeUnit: Bounds['storeUnit']): string {
  return COLUMNS.map(([name, width], i) =>
    (i === 7 ? `store ${storeUnit ?? ''}`.trim() : name).padStart(width),
  ).join(' ');
}

const num = (v: number | null, digits: number) =>
  v === null || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);

export function sampleRow(s: Sample, w: Windows, storeUnit: Bounds['storeUnit']): string {
  const cells = [
    num(s.t, 0),
    phaseOf(s.t, w),
    num(s.rssMb, 1),
    num(s.heapUsedMb, 1),
    num(s.heapLiveMb, 1),
    num(s.fds, 0),
    num(s.resources, 0),
    num(s.store, storeUnit === 'keys' ? 0 : 2),
    num(s.opsPerSecond, 0),
  ];
  return cells.map((c, i) => c.padStart(COLUMNS[i]![1])).join(' ');
}

/** One line per kind of operation: how many, what was expected, and anything else seen. */
export function outcomeLines(tally: Tally): string[] {
  const kinds = [...tally.kinds].sort(([a], [b]) => a.localeCompare(b));
  const rows = kinds.map(([kind, t]) => {
    const total = [...t.outcomes.values()].reduce((a, b) => a + b, 0);
    const others = [...t.outcomes]
      .filter(([outcome]) => outcome !== t.expect)
      .map(([outcome, n]) => `${n}× ${outcome}`);
    return [
      kind,
      String(total),
      `${t.outcomes.get(t.expect) ?? 0}× ${t.expect}`,
      others.join('; ') || '—',
    ];
  });
  const header = ['operation', 'count', 'expected', 'unexpected'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The levels compared: each window's medians, and the growth between them. */
export function windowLines(g: Growth, b: Bounds): string[] {
  const store = (v: number | null) =>
    v === null || !Number.isFinite(v)
      ? 'n/a'
      : `${v.toFixed(b.storeUnit === 'keys' ? 0 : 2)} ${b.storeUnit}`;
  const mb = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} MB` : 'n/a');
  const level = (name: string, [from, to]: [number, number], l: Growth['early']) =>
    `${name} window ${from.toFixed(0)}–${to.toFixed(0)} s (${l.samples} samples): RSS ${mb(l.rssMb)}, live heap ${mb(l.heapMb)} (heap used ${mb(l.heapUsedMb)}), store ${store(l.store)} (medians)`;
  return [
    `warm-up 0–${g.windows.warmup.toFixed(0)} s, not counted`,
    level('early', g.windows.early, g.early),
    level('late ', g.windows.late, g.late),
  ];
}

/** The plot of `benchmarks/soak-<store>.svg`: RSS, heap and (but for the memory store) store. */
export function soakChart(
  samples: Sample[],
  g: Growth,
  b: Bounds,
  title: string,
  subtitle: string,
): string {
  const { windows } = g;
  const minutes = (t: number) => t / 60;
  const line = (pick: (s: Sample) => number) =>
    samples.map((s) => ({ x: minutes(s.t), y: pick(s) }));
  const levels = (pick: (l: Growth['early']) => number) => [
    { from: minutes(windows.early[0]), to: minutes(windows.early[1]), y: pick(g.early) },
    { from: minutes(windows.late[0]), to: minutes(windows.late[1]), y: pick(g.late) },
  ];
  return chartSvg({
    title,
    subtitle,
    xLabel: 'minutes into the load',
    xMax: minutes(Math.max(windows.late[1], ...samples.map((s) => s.t))),
    bands: [
      { from: 0, to: minutes(windows.warmup), label: 'warm-up', fill: '#f0f0f0' },
      {
        from: minutes(windows.early[0]),
        to: minutes(windows.early[1]),
        label: 'windows compared',
        fill: '#fff3d6',
      },
      { from: minutes(windows.late[0]), to: minutes(windows.late[1]), label: '', fill: '#fff3d6' },
    ],
    panels: [
      {
        title: 'RSS (MB)',
        lines: [{ label: 'RSS', color: '#1f77b4', points: line((s) => s.rssMb) }],
        levels: levels((l) => l.rssMb),
      },
      {
        title: 'V8 heap (MB)',
        lines: [
          { label: 'heap used', color: '#f4a3a3', points: line((s) => s.heapUsedMb) },
          {
            label: 'live heap (after a full GC)',
            color: '#d62728',
            points: line((s) => s.heapLiveMb),
          },
        ],
        levels: levels((l) => l.heapMb),
      },
      ...(b.storeUnit === null
        ? []
        : [
            {
              title: `store (${b.storeUnit})`,
              lines: [
                { label: 'store', color: '#2ca02c', points: line((s) => s.store ?? Number.NaN) },
              ],
              levels: levels((l) => l.store ?? Number.NaN),
            },
          ]),
    ],
    levelsLabel: 'window median',
  });
}

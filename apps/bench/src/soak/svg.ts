// A line chart as SVG text, written by hand: panels stacked over one time axis, each with a
// y axis of its own (RSS and heap differ by a factor of four or more, and a shared axis from 0
// would flatten the growth the chart is there to show).

export interface Point {
  x: number;
  y: number;
}

/** A stretch of the x axis, shaded across every panel. */
export interface Band {
  from: number;
  to: number;
  /** Shown in the legend unless empty (for a second stretch of the same meaning). */
  label: string;
  fill: string;
}

export interface Line {
  label: string;
  color: string;
  /** NaN values of y break the line. */
  points: Point[];
}

export interface Panel {
  /** The y axis's title. */
  title: string;
  lines: Line[];
  /** Levels drawn dashed over part of the x axis (e.g. a window's median). */
  levels?: Array<{ from: number; to: number; y: number }>;
}

export interface Chart {
  title: string;
  subtitle?: string;
  xLabel: string;
  xMax: number;
  bands: Band[];
  panels: Panel[];
  levelsLabel?: string;
  width?: number;
  panelHeight?: number;
}

/** About `count` round values spanning [min, max] (1, 2, 2.5 or 5 times a power of ten apart). */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max - min < 1e-9) {
    const pad = Math.max(1, Math.abs(min) * 0.05);
    return niceTicks(min - pad, max + pad, count);
  }
  const rough = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough)!;
  const ticks: number[] = [];
  const first = Math.floor(min / step) * step;
  for (let v = first; v < max + step - 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const fmt = (v: number) => String(Number(v.toFixed(2)));

/** The polyline points of each unbroken run of finite points. */
function runs(points: Point[], sx: (x: number) => number, sy: (y: number) => number): string[] {
  const out: string[] = [];
  let current: string[] = [];
  for (const p of points) {
    if (Number.isFinite(p.x) && Number.isFinite(p.y)) {
      current.push(`${fmt(sx(p.x))},${fmt(sy(p.y))}`);
    } else if (current.length > 0) {
      out.push(current.join(' '));
      current = [];
    }
  }
  if (current.length > 0) out.push(current.join(' '));
  return out;
}

const LEFT = 70;
const RIGHT = 20;
const GAP = 40;
const BOTTOM = 50;
const LEGEND_ROW = 20;

/** A legend entry: its swatch drawn at (x, y), y being the middle of its row. */
interface Entry {
  swatch: (x: number, y: number) => string;
  label: string;
}

/** The legend's entries in rows that fit `width`, from (LEFT, `y`). */
function legendRows(entries: Entry[], width: number, y: number): { svg: string[]; rows: number } {
  const svg: string[] = [];
  let x = LEFT;
  let rows = 1;
  for (const entry of entries) {
    const entryWidth = 36 + entry.label.length * 6.8;
    if (x > LEFT && x + entryWidth > width - RIGHT) {
      x = LEFT;
      rows++;
    }
    const middle = y + (rows - 1) * LEGEND_ROW;
    svg.push(
      entry.swatch(x, middle),
      `<text x="${fmt(x + 22)}" y="${fmt(middle + 4)}">${escapeXml(entry.label)}</text>`,
    );
    x += entryWidth;
  }
  return { svg, rows };
}

export function chartSvg(chart: Chart): string {
  const width = chart.width ?? 800;
  const panelHeight = chart.panelHeight ?? 200;
  const plotWidth = width - LEFT - RIGHT;
  const xMax = Math.max(chart.xMax, 1e-9);
  const xTicks = niceTicks(0, xMax, 8).filter((t) => t <= xMax + 1e-9);
  const sx = (x: number) => LEFT + (x / xMax) * plotWidth;
  const text = (x: number, y: number, s: string, extra = '') =>
    `<text x="${fmt(x)}" y="${fmt(y)}"${extra}>${escapeXml(s)}</text>`;

  // The legend: the lines, the dashed levels, the bands.
  const entries: Entry[] = chart.panels
    .flatMap((p) => p.lines)
    .map((line) => ({
      label: line.label,
      swatch: (x, y) =>
        `<rect x="${fmt(x)}" y="${fmt(y - 1.5)}" width="16" height="3" fill="${line.color}"/>`,
    }));
  if (chart.levelsLabel && chart.panels.some((p) => (p.levels ?? []).length > 0)) {
    entries.push({
      label: chart.levelsLabel,
      swatch: (x, y) =>
        `<line x1="${fmt(x)}" y1="${fmt(y)}" x2="${fmt(x + 16)}" y2="${fmt(y)}" stroke="#000" stroke-width="1.5" stroke-dasharray="5 3"/>`,
    });
  }
  for (const band of chart.bands.filter((b) => b.label)) {
    entries.push({
      label: band.label,
      swatch: (x, y) =>
        `<rect x="${fmt(x)}" y="${fmt(y - 6)}" width="16" height="12" fill="${band.fill}"/>`,
    });
  }
  const legend = legendRows(entries, width, 64);
  const top = 64 + legend.rows * LEGEND_ROW;
  const height = top + chart.panels.length * (panelHeight + GAP) - GAP + BOTTOM;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    // (Read out in place of the picture, e.g. by a screen reader.)
    `<title>${escapeXml([chart.title, chart.subtitle].filter(Boolean).join('. '))}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    text(LEFT, 24, chart.title, ' font-size="16" font-weight="bold"'),
    ...(chart.subtitle ? [text(LEFT, 44, chart.subtitle, ' fill="#555"')] : []),
    ...legend.svg,
  ];

  chart.panels.forEach((panel, i) => {
    const y0 = top + i * (panelHeight + GAP);
    const bottom = y0 + panelHeight;
    const values = [
      ...panel.lines.flatMap((l) => l.points.map((p) => p.y)),
      ...(panel.levels ?? []).map((l) => l.y),
    ].filter(Number.isFinite);
    const yTicks = niceTicks(Math.min(...values), Math.max(...values), 4);
    const yMin = yTicks[0]!;
    const yMax = yTicks.at(-1)!;
    const sy = (y: number) => bottom - ((y - yMin) / (yMax - yMin)) * panelHeight;

    for (const band of chart.bands) {
      const x1 = sx(Math.max(0, band.from));
      const x2 = sx(Math.min(xMax, band.to));
      out.push(
        `<rect x="${fmt(x1)}" y="${y0}" width="${fmt(Math.max(0, x2 - x1))}" height="${panelHeight}" fill="${band.fill}"/>`,
      );
    }
    for (const t of yTicks) {
      const y = sy(t);
      out.push(
        `<line x1="${LEFT}" y1="${fmt(y)}" x2="${LEFT + plotWidth}" y2="${fmt(y)}" stroke="#e4e4e4"/>`,
        text(LEFT - 6, y + 4, fmt(t), ' text-anchor="end"'),
      );
    }
    for (const t of xTicks) {
      const x = sx(t);
      out.push(
        `<line x1="${fmt(x)}" y1="${bottom}" x2="${fmt(x)}" y2="${bottom + 4}" stroke="#333"/>`,
        text(x, bottom + 16, fmt(t), ' text-anchor="middle"'),
      );
    }
    const titleY = fmt(y0 + panelHeight / 2);
    out.push(
      `<rect x="${LEFT}" y="${y0}" width="${plotWidth}" height="${panelHeight}" fill="none" stroke="#333"/>`,
      text(
        LEFT - 48,
        y0 + panelHeight / 2,
        panel.title,
        ` text-anchor="middle" transform="rotate(-90 ${LEFT - 48} ${titleY})"`,
      ),
    );
    for (const line of panel.lines) {
      for (const run of runs(line.points, sx, sy)) {
        out.push(
          `<polyline points="${run}" fill="none" stroke="${line.color}" stroke-width="1.5" stroke-linejoin="round"/>`,
        );
      }
    }
    for (const level of panel.levels ?? []) {
      if (!Number.isFinite(level.y)) continue;
      out.push(
        `<line x1="${fmt(sx(level.from))}" y1="${fmt(sy(level.y))}" x2="${fmt(sx(level.to))}" y2="${fmt(sy(level.y))}" stroke="#000" stroke-width="1.5" stroke-dasharray="5 3"/>`,
      );
    }
  });
  out.push(text(LEFT + plotWidth / 2, height - 14, chart.xLabel, ' text-anchor="middle"'));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

import { describe, expect, it } from 'vitest';
import { type Chart, chartSvg, escapeXml, niceTicks } from './svg.ts';

describe('niceTicks', () => {
  it('spans the range in round steps', () => {
    expect(niceTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(121.3, 139.5, 4)).toEqual([120, 125, 130, 135, 140]);
    expect(niceTicks(0, 0.25, 5)).toEqual([0, 0.05, 0.1, 0.15, 0.2, 0.25]);
  });

  it('gives a flat series a range around it, and anything else a default one', () => {
    const ticks = niceTicks(20, 20);
    expect(ticks[0]).toBeLessThan(20);
    expect(ticks.at(-1)).toBeGreaterThan(20);
    expect(niceTicks(Number.NaN, 3)).toEqual([0, 1]);
  });
});

const chart = (over: Partial<Chart> = {}): Chart => ({
  title: 'soak <sqlite> & co',
  xLabel: 'minutes',
  xMax: 2,
  bands: [
    { from: 0, to: 0.5, label: 'warm-up', fill: '#eee' },
    { from: 1.5, to: 2, label: '', fill: '#ffe' },
  ],
  panels: [
    {
      title: 'RSS (MB)',
      lines: [
        {
          label: 'RSS',
          color: 'blue',
          points: [0, 0.5, 1, 1.5, 2].map((x) => ({ x, y: 120 + x })),
        },
      ],
      levels: [{ from: 1.5, to: 2, y: 121.8 }],
    },
    {
      title: 'heap (MB)',
      lines: [
        {
          label: 'live heap',
          color: 'red',
          // A sample the probe did not answer breaks the line in two.
          points: [0, 0.5, 1, 1.5, 2].map((x) => ({ x, y: x === 1 ? Number.NaN : 20 })),
        },
      ],
    },
  ],
  levelsLabel: 'window median',
  ...over,
});

describe('chartSvg', () => {
  it('draws each line as polylines, broken where a value is missing', () => {
    const svg = chartSvg(chart());
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toMatch(/^<svg [^>]*>\n<title>soak &#60;sqlite&#62; &#38; co<\/title>/);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(3);
    expect(svg).toContain('stroke="blue"');
    expect(svg).toContain('stroke-dasharray="5 3"');
  });

  it('escapes its text, and writes no NaN or Infinity', () => {
    const svg = chartSvg(chart());
    expect(svg).toContain(escapeXml('soak <sqlite> & co'));
    expect(svg).not.toMatch(/<sqlite>|& co/);
    expect(svg).not.toMatch(/NaN|Infinity/);
    expect(svg.match(/<text /g)?.length).toBe(svg.match(/<\/text>/g)?.length);
  });

  it('labels the axes and lists lines, levels and named bands in the legend', () => {
    const svg = chartSvg(chart());
    for (const label of [
      'RSS (MB)',
      'heap (MB)',
      'minutes',
      'RSS',
      'live heap',
      'window median',
      'warm-up',
    ]) {
      expect(svg).toContain(`>${label}</text>`);
    }
    expect(svg.match(/>warm-up<\/text>/g)).toHaveLength(1);
  });

  it('wraps a legend too wide for one row, and makes room for it', () => {
    const many = chart({
      bands: Array.from({ length: 12 }, (_, i) => ({
        from: 0,
        to: 0,
        label: `a long band label ${i}`,
        fill: '#eee',
      })),
    });
    const height = (svg: string) => Number(/height="(\d+)"/.exec(svg)![1]);
    expect(height(chartSvg(many))).toBeGreaterThan(height(chartSvg(chart())));
  });
});

import { describe, expect, it } from 'vitest';
import {
  BOUNDS,
  growthOf,
  lastLine,
  median,
  pastBounds,
  phaseOf,
  type Sample,
  sampleEverySeconds,
  signed,
  windowsFor,
} from './growth.ts';

/** A 10-minute run sampled every 5 s; `leak` MB/min added to RSS, live heap and the store. */
function run({ leak = 0, minutes = 10, store = 40 as number | null } = {}): Sample[] {
  const samples: Sample[] = [];
  for (let t = 0; t <= minutes * 60; t += 5) {
    const grown = (leak * t) / 60;
    // GC's sawtooth and the VM's noise, not growth: ±1 MB on RSS, 12 MB of garbage in the heap.
    const wobble = Math.sin(t * 1.7);
    samples.push({
      t,
      rssMb: 130 + grown + wobble,
      heapUsedMb: 22 + grown + (12 * ((t / 5) % 3)) / 3,
      heapLiveMb: 20 + grown + 0.2 * wobble,
      fds: 50,
      resources: 30,
      store: store === null ? null : store + grown + 0.3 * wobble,
      opsPerSecond: 400,
    });
  }
  return samples;
}

describe('windowsFor', () => {
  it('compares the first minute after a warm-up of a fifth of the run with the last minute', () => {
    expect(windowsFor(600)).toEqual({ warmup: 120, early: [120, 180], late: [540, 600] });
  });

  it('warms up 30 s at least, and keeps the windows apart in short runs', () => {
    expect(windowsFor(60)).toEqual({ warmup: 30, early: [30, 40], late: [50, 60] });
    const w = windowsFor(15);
    expect(w.warmup).toBe(7.5);
    expect(w.early[1]).toBeLessThan(w.late[0]);
  });

  it('names the phase of a sample', () => {
    const w = windowsFor(600);
    expect([0, 130, 300, 560].map((t) => phaseOf(t, w))).toEqual(['warm-up', 'early', '', 'late']);
  });
});

describe('sampleEverySeconds', () => {
  it('samples every 5 s, and more often in short runs', () => {
    expect(sampleEverySeconds(600)).toBe(5);
    expect(sampleEverySeconds(60)).toBe(2);
    expect(sampleEverySeconds(15)).toBe(1);
  });
});

describe('median', () => {
  it('takes the middle of the finite values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });
});

describe('growth against the bounds', () => {
  it('passes a server that is flat once warm, GC sawtooth and all', () => {
    for (const kind of ['sqlite', 'memory', 'redis'] as const) {
      const g = growthOf(run({ store: kind === 'memory' ? null : 40 }), 600);
      expect(pastBounds(g, BOUNDS[kind])).toEqual([]);
      expect(Math.abs(g.heapMb)).toBeLessThan(0.5);
    }
  });

  it('fails a leak of 1 MB/min, on every measure it shows in', () => {
    const g = growthOf(run({ leak: 1 }), 600);
    expect(g.heapMb).toBeCloseTo(7, 0);
    expect(pastBounds(g, BOUNDS.sqlite)).toEqual([
      expect.stringMatching(/^RSS \+7\.\d MB > \+5 MB$/),
      'heap +7.0 MB > +3 MB',
      expect.stringMatching(/^store \+7\.\d MB > \+2 MB$/),
    ]);
  });

  it('counts a measure that has no sample in a window as past its bound', () => {
    const samples = run().filter((s) => s.t < 500);
    expect(pastBounds(growthOf(samples, 600), BOUNDS.memory)).toEqual([
      'RSS n/a > +5 MB',
      'heap n/a > +3 MB',
    ]);
  });
});

describe('lastLine', () => {
  it('is `soak: RSS +X MB, heap +Y MB, store +Z (bound B)`', () => {
    const line = lastLine(growthOf(run({ leak: 0.1 }), 600), BOUNDS.sqlite);
    expect(line).toMatch(
      /^soak: RSS \+0\.\d MB, heap \+0\.\d MB, store \+0\.\d MB \(bound RSS \+5 MB, heap \+3 MB, store \+2 MB\)$/,
    );
  });

  it('counts Redis in keys, and says the memory store is in the heap', () => {
    const redis = lastLine(growthOf(run({ store: 10_000 }), 600), BOUNDS.redis);
    expect(redis).toMatch(
      /, store [+-]\d+ keys \(bound RSS \+5 MB, heap \+3 MB, store \+5000 keys\)$/,
    );
    const memory = lastLine(growthOf(run({ store: null }), 600), BOUNDS.memory);
    expect(memory).toMatch(
      /, store n\/a \(bound RSS \+5 MB, heap \+3 MB; the memory store is in the heap\)$/,
    );
  });
});

describe('signed', () => {
  it('always shows the sign, and no minus zero', () => {
    expect(signed(1.26)).toBe('+1.3');
    expect(signed(-0.44)).toBe('-0.4');
    expect(signed(-0.04)).toBe('+0.0');
    expect(signed(-12, 0)).toBe('-12');
    expect(signed(Number.NaN)).toBe('n/a');
  });
});

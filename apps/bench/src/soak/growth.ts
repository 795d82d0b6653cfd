// How much the server grew over a soak once warm, and whether that is within the bounds.

/** One reading of the server process and its store, `t` seconds into the load. */
export interface Sample {
  t: number;
  rssMb: number;
  /** V8 heap used (MB), garbage and all; NaN when the server's probe did not answer. */
  heapUsedMb: number;
  /** V8 heap used just after a full GC (MB): the live heap, whose growth is bounded. */
  heapLiveMb: number;
  /** Open file descriptors (/proc/PID/fd). */
  fds: number;
  /** Handles and requests keeping the server's event loop alive (timers, sockets, …). */
  resources: number;
  /** The store's size in its unit (MB of SQLite files, Redis keys); null for the memory store. */
  store: number | null;
  /** Load operations completed since the previous sample, per second. */
  opsPerSecond: number;
}

export type StoreKind = 'sqlite' | 'memory' | 'redis';

export interface Bounds {
  rssMb: number;
  heapMb: number;
  /** null: the store is the heap (memory store), bounded by `heapMb`. */
  store: number | null;
  storeUnit: 'MB' | 'keys' | null;
}

/**
 * Growth allowed between the two windows. In a 10-minute run their middles are 7 minutes apart,
 * so a leak of 1 MB/min shows as +7 MB and breaks every MB bound here, while a warm, healthy
 * server stays well within them (BENCHMARKS.md, "Soak"). Redis is bounded in keys of the soak's
 * namespace: every key there expires, so a count that keeps rising is a leak (1 MB/min of
 * ~300-byte keys is 3 500 keys/min); the bound allows for the nonce keys' count following the
 * call rate, which moves with this VM's speed.
 */
export const BOUNDS: Record<StoreKind, Bounds> = {
  sqlite: { rssMb: 5, heapMb: 3, store: 2, storeUnit: 'MB' },
  memory: { rssMb: 5, heapMb: 3, store: null, storeUnit: null },
  redis: { rssMb: 5, heapMb: 3, store: 5_000, storeUnit: 'keys' },
};

export interface Windows {
  /** End of the warm-up (s): its samples count for nothing. */
  warmup: number;
  early: [number, number];
  late: [number, number];
}

/**
 * Growth is measured between two windows: the first minute after a warm-up of a fifth of the run,
 * and the last minute. The warm-up lasts 30 s at least (half of a run shorter than a minute): the
 * SQLite store's write-ahead log takes some 25 s at the soak's rate to fill to its checkpoint size,
 * at which it stays. A run too short for two minutes after its warm-up gets windows of a third of
 * what follows the warm-up each, so that they never overlap.
 */
export function windowsFor(runSeconds: number): Windows {
  const warmup = Math.max(runSeconds * 0.2, Math.min(30, runSeconds / 2));
  const length = Math.min(60, (runSeconds - warmup) / 3);
  return { warmup, early: [warmup, warmup + length], late: [runSeconds - length, runSeconds] };
}

/** Seconds between samples: every 5 s, more often in short runs (at least ~30 samples). */
export function sampleEverySeconds(runSeconds: number): number {
  return Math.max(1, Math.min(5, runSeconds / 30));
}

export function phaseOf(t: number, w: Windows): 'warm-up' | 'early' | 'late' | '' {
  if (t < w.warmup) return 'warm-up';
  if (t <= w.early[1]) return 'early';
  if (t >= w.late[0]) return 'late';
  return '';
}

/** The median of the finite values; NaN when there are none. */
export function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Levels {
  rssMb: number;
  /** The live heap. */
  heapMb: number;
  heapUsedMb: number;
  store: number | null;
  samples: number;
}

export interface Growth {
  windows: Windows;
  early: Levels;
  late: Levels;
  rssMb: number;
  heapMb: number;
  store: number | null;
}

function levels(samples: Sample[], [from, to]: [number, number]): Levels {
  const inside = samples.filter((s) => s.t >= from && s.t <= to);
  const stores = inside.map((s) => s.store).filter((v): v is number => v !== null);
  return {
    rssMb: median(inside.map((s) => s.rssMb)),
    heapMb: median(inside.map((s) => s.heapLiveMb)),
    heapUsedMb: median(inside.map((s) => s.heapUsedMb)),
    store: stores.length > 0 ? median(stores) : null,
    samples: inside.length,
  };
}

/** The late window's medians minus the early window's (medians pass over GC's sawtooth). */
export function growthOf(samples: Sample[], runSeconds: number): Growth {
  const windows = windowsFor(runSeconds);
  const early = levels(samples, windows.early);
  const late = levels(samples, windows.late);
  return {
    windows,
    early,
    late,
    rssMb: late.rssMb - early.rssMb,
    heapMb: late.heapMb - early.heapMb,
    store: early.store === null || late.store === null ? null : late.store - early.store,
  };
}

/**
 * What is past its bound, one phrase each; empty when all is within. A measure that could not be
 * taken (NaN: no sample in a window) counts as past it, since nothing was shown.
 */
export function pastBounds(g: Growth, b: Bounds): string[] {
  const past: string[] = [];
  const check = (what: string, value: number, bound: number, unit: string) => {
    if (!(value <= bound))
      past.push(`${what} ${amount(value, unit, unit === ' keys' ? 0 : 1)} > +${bound}${unit}`);
  };
  check('RSS', g.rssMb, b.rssMb, ' MB');
  check('heap', g.heapMb, b.heapMb, ' MB');
  if (b.store !== null) check('store', g.store ?? Number.NaN, b.store, ` ${b.storeUnit}`);
  return past;
}

/** `+1.2`, `-0.4`, `+0.0`; keys as whole numbers. */
export function signed(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return 'n/a';
  const text = Math.abs(value).toFixed(digits);
  return `${value < 0 && Number(text) !== 0 ? '-' : '+'}${text}`;
}

/** `+1.2 MB`; `n/a` alone when it could not be measured. */
function amount(value: number, unit: string, digits = 1): string {
  return Number.isFinite(value) ? `${signed(value, digits)}${unit}` : 'n/a';
}

/** The soak's last line: `soak: RSS +X MB, heap +Y MB, store +Z (bound B)`. */
export function lastLine(g: Growth, b: Bounds): string {
  const storeDigits = b.storeUnit === 'keys' ? 0 : 1;
  const store =
    b.store === null
      ? 'store n/a'
      : `store ${amount(g.store ?? Number.NaN, ` ${b.storeUnit}`, storeDigits)}`;
  const bound = `RSS +${b.rssMb} MB, heap +${b.heapMb} MB${
    b.store === null ? '; the memory store is in the heap' : `, store +${b.store} ${b.storeUnit}`
  }`;
  return `soak: RSS ${amount(g.rssMb, ' MB')}, heap ${amount(g.heapMb, ' MB')}, ${store} (bound ${bound})`;
}

// Loaded into the soak's server process with `--import`, ahead of apps/server/src/cli.ts, which
// runs unchanged: V8's heap can only be read from inside the process, and this way the shipped
// server needs no hook of its own. On SIGUSR2 (which the soak sends at each sample) it reads the
// heap, runs a full GC, reads the heap again, and writes both to the file that SOAK_PROBE_FILE
// names. Heap used after a full GC is the live heap: without that GC the figure swings by 10 MB
// and more with garbage not yet collected, far more than the growth the soak is there to bound.
// The GC costs the server a pause of some milliseconds per sample (every 1–5 s).
import { renameSync, writeFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface ProbeReading {
  /** Counts the readings, so that the soak can tell a new one from the last. */
  seq: number;
  /** Heap used as found, garbage and all. */
  heapUsed: number;
  /** Heap used just after a full GC. */
  liveHeap: number;
  heapTotal: number;
  external: number;
  /** Handles and requests that keep the event loop alive (timers, sockets, …). */
  activeResources: number;
}

const file = process.env.SOAK_PROBE_FILE;
if (file) {
  // `gc` for this module only: the server's own code sees no global `gc`.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  let seq = 0;
  process.on('SIGUSR2', () => {
    const before = process.memoryUsage().heapUsed;
    gc();
    const m = process.memoryUsage();
    const reading: ProbeReading = {
      seq: ++seq,
      heapUsed: before,
      liveHeap: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      activeResources: process.getActiveResourcesInfo().length,
    };
    try {
      // Written aside and renamed, so that the soak never reads half of it.
      writeFileSync(`${file}.tmp`, JSON.stringify(reading));
      renameSync(`${file}.tmp`, file);
    } catch {
      // (The soak's folder is gone: it is over.)
    }
  });
}

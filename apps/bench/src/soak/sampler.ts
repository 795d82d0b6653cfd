// Readings of the soak's server, taken from outside it (/proc, the store) but for V8's heap,
// which the probe that the server was started with reports when asked (probe.ts).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { namespaceKeys } from '@signet/server/redis';
import { Redis } from 'ioredis';
import { rssMb } from '../harness.ts';
import type { ProbeReading } from './probe.ts';

const MB = 1024 * 1024;

export interface ProcessReading {
  rssMb: number;
  fds: number;
  /** NaN when the probe did not answer in time. */
  heapUsedMb: number;
  heapLiveMb: number;
  activeResources: number;
}

const PROBE_WAIT_MS = 2_000;

/**
 * Asks the probe in the server for a reading (SIGUSR2) and waits for it, up to 2 s; RSS and open
 * descriptors come from /proc/PID, taken once the probe's GC is done.
 */
export async function readProcess(
  pid: number,
  probeFile: string,
  lastSeq: number,
): Promise<ProcessReading & { seq: number }> {
  process.kill(pid, 'SIGUSR2');
  const deadline = performance.now() + PROBE_WAIT_MS;
  let probe: ProbeReading | undefined;
  while (performance.now() < deadline) {
    try {
      const reading = JSON.parse(readFileSync(probeFile, 'utf8')) as ProbeReading;
      if (reading.seq > lastSeq) {
        probe = reading;
        break;
      }
    } catch {
      // (Not written yet.)
    }
    await sleep(5);
  }
  return {
    seq: probe?.seq ?? lastSeq,
    rssMb: rssMb(pid),
    fds: readdirSync(`/proc/${pid}/fd`).length,
    heapUsedMb: probe ? probe.heapUsed / MB : Number.NaN,
    heapLiveMb: probe ? probe.liveHeap / MB : Number.NaN,
    activeResources: probe?.activeResources ?? Number.NaN,
  };
}

/** The size of a store, in the unit its growth is bounded in. */
export interface StoreGauge {
  read(): Promise<number | null>;
  close(): void;
}

/** A SQLite store: its database file and its write-ahead log (MB). */
export function sqliteGauge(path: string): StoreGauge {
  const size = (file: string) => (existsSync(file) ? statSync(file).size : 0);
  return {
    read: async () => (size(path) + size(`${path}-wal`)) / MB,
    close() {},
  };
}

/**
 * A Redis store: the keys of the soak's namespace (its own and its queue's). Not Redis's
 * used_memory: the Redis is shared, and other users' keys would count.
 */
export function redisGauge(url: string, namespace: string): StoreGauge {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  return {
    async read() {
      let count = 0;
      for (const pattern of namespaceKeys(namespace).patterns) {
        for await (const keys of redis.scanStream({ match: pattern, count: 1000 })) {
          count += (keys as string[]).length;
        }
      }
      return count;
    },
    close() {
      redis.disconnect();
    },
  };
}

/** The memory store lives in the server's heap, which is measured already. */
export const memoryGauge: StoreGauge = { read: async () => null, close() {} };

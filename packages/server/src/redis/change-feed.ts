import { EventEmitter } from 'node:events';
import { isTerminal } from '@signet/protocol';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { JobChanges } from '../jobs/lifecycle.ts';
import { recordToState } from '../jobs/record.ts';
import type { JobUpdate } from '../jobs/types.ts';
import type { JobRecord } from '../stores/types.ts';
import { blockingRedis } from './connection.ts';

/**
 * How many announcements the change stream keeps: a reader that falls further behind misses
 * some, and its watchers see those changes at their next recheck (RECHECK_MS).
 */
export const CHANGE_STREAM_LENGTH = 10_000;
/** How often a watcher reads its job's log even if no change was announced. */
const RECHECK_MS = 1_000;
/** How many announced records a watcher holds before it reads the log instead. */
const MAX_ANNOUNCED = 100;

/**
 * The changes of a deployment's jobs as this process hears of them: from the change stream
 * (every change, by whichever process wrote it), followed once the first watch_job needs it, and
 * at once for the changes this process writes itself.
 */
export class ChangeFeed {
  private readonly changes = new EventEmitter();
  /** The connection reading the change stream, once a watch_job started it. */
  private reader: Redis | undefined;
  private listening: Promise<void> | undefined;
  private closing = false;

  constructor(
    /** The request-path connection. */
    private readonly redis: Redis,
    private readonly url: string,
    private readonly stream: string,
    private readonly logger: Logger,
  ) {
    this.changes.setMaxListeners(0);
  }

  /** A change this process wrote: its own watchers need not wait for the stream. */
  announce(record: JobRecord): void {
    this.changes.emit(record.id, record);
  }

  /**
   * Follows the change stream (once started, for good), from the first watch_job: only watchers
   * need it (polls and starts read and write Redis directly).
   */
  listen(): Promise<void> {
    this.listening ??= (async () => {
      // From the stream's current end, so that nothing written after this call is missed
      // however long the first read takes to be sent.
      const [last] = await this.redis.xrevrange(this.stream, '+', '-', 'COUNT', 1);
      this.reader = blockingRedis(this.url);
      void this.follow(this.reader, last?.[0] ?? '0-0');
    })();
    return this.listening;
  }

  private async follow(reader: Redis, from: string): Promise<void> {
    let after = from;
    while (!this.closing) {
      try {
        const batches = await reader.xread(
          'COUNT',
          1000,
          'BLOCK',
          10_000,
          'STREAMS',
          this.stream,
          after,
        );
        for (const [, entries] of batches ?? []) {
          for (const [id, fields] of entries) {
            after = id;
            // fields: jobId, <id>, record, <the job's record as written, without its args; its
            // output only on `done`>. Read only for a job that someone here watches.
            const jobId = fields[1];
            if (jobId !== undefined && this.changes.listenerCount(jobId) > 0) {
              this.changes.emit(jobId, parseRecord(fields[3]));
            }
          }
        }
      } catch (error) {
        if (this.closing) return;
        // (Watchers recheck their jobs meanwhile.)
        this.logger.warn({ err: error }, 'change stream read failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }

  /**
   * A watcher's view of its job's announcements: the records they carried, in order, or word
   * that the log must be read (an announcement without its record, or none for RECHECK_MS: one
   * can be lost while its reader reconnects or falls behind the stream's trimmed end, and a
   * watcher must still see the job end).
   */
  changesOf(jobId: string, signal: AbortSignal): JobChanges {
    return new JobChanges(this.changes, jobId, signal, {
      limit: MAX_ANNOUNCED,
      recheckMs: RECHECK_MS,
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.listening?.catch(() => {});
    this.reader?.disconnect();
  }
}

/**
 * The updates of a watched job after cursor `after` (or from its current state `record`),
 * ending with its terminal state: from the announcements `changes` hears, and from the job's log
 * (`changesFrom`) where they may have missed some. Ends quietly once `signal` aborts.
 */
export async function* jobUpdates(
  record: JobRecord,
  after: string | undefined,
  changes: JobChanges,
  signal: AbortSignal,
  changesFrom: (jobId: string, seq: number) => Promise<JobRecord[]>,
): AsyncGenerator<JobUpdate> {
  const cursor = after === undefined ? Number.NaN : Number(after);
  let last = record.seq;
  const update = (event: JobRecord): JobUpdate => {
    last = event.seq;
    return { id: String(event.seq), state: recordToState(event) };
  };
  try {
    let readLog = Number.isInteger(cursor) && cursor >= 0 && cursor <= record.seq;
    if (readLog) {
      last = cursor;
    } else {
      // No cursor, or one we do not know: start from the current state (read after listening).
      yield update(record);
      if (isTerminal(record.status)) return;
    }
    while (!signal.aborted) {
      if (readLog) {
        // The job's own log has every change, however the announcements came.
        for (const event of await changesFrom(record.id, last + 1)) {
          if (event.seq <= last) continue;
          yield update(event);
          if (isTerminal(event.status)) return;
        }
      }
      const next = await changes.next();
      readLog = next.missed;
      for (const event of next.records) {
        if (event.seq <= last) continue;
        // A gap: announcements were lost in between.
        if (event.seq !== last + 1) {
          readLog = true;
          break;
        }
        yield update(event);
        if (isTerminal(event.status)) return;
      }
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    changes.close();
  }
}

/** A record carried by an announcement; undefined if it is not one (then the log is read). */
function parseRecord(text: string | undefined): JobRecord | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as JobRecord;
  } catch {
    return undefined;
  }
}

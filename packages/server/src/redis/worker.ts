import { isTerminal } from '@signet/protocol';
import type * as BullMQ from 'bullmq';
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  DEFAULT_CONCURRENCY,
  interrupted,
  noHandlerHere,
  RunningHandlers,
  runHandler,
  runningPatch,
  runsAgain,
} from '../jobs/lifecycle.ts';
import type { JobDefinition } from '../jobs/types.ts';
import { requirePeer } from '../peers.ts';
import type { JobRecord } from '../stores/types.ts';
import { blockingRedis } from './connection.ts';
import { CANCELLING, type RedisJobRecords } from './scripts.ts';

// An optional peer dependency: only users of the Redis backend need it.
const bullmq = requirePeer<typeof BullMQ>('bullmq', '@signet/server/redis');

/** What a BullMQ job of this engine carries. */
export interface QueuedJob {
  jobId: string;
  /** The job's record as started (JSON), when small. */
  record?: string;
}

export interface JobWorkerOptions {
  url: string;
  queueName: string;
  records: RedisJobRecords;
  definitions: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  concurrency: number | undefined;
  retentionMs: number;
  /** The largest job output kept (default DEFAULT_MAX_OUTPUT_BYTES); larger fails the job. */
  maxOutputBytes?: number | undefined;
  /** How soon a dead worker's job is noticed (BullMQ lock duration; default 10 s). */
  lockMs: number | undefined;
}

/**
 * Runs the handlers of the jobs BullMQ hands this process. BullMQ delivers and locks jobs and
 * notices dead workers; the worker decides itself what becomes of a job whose worker died when
 * BullMQ hands it out again, and hears of cancels on a pub/sub channel.
 */
/** How long, past the grace period, a worker's orderly close may take. */
const CLOSE_BOUND_MS = 5_000;

export class JobWorker {
  private readonly records: RedisJobRecords;
  private readonly definitions: ReadonlyMap<string, JobDefinition>;
  private readonly logger: Logger;
  private readonly maxOutputBytes: number | undefined;
  private readonly bull: Worker;
  /** The subscription to the cancel channel. */
  private readonly cancels: Redis;
  private readonly running = new RunningHandlers();
  /** BullMQ's connection (it makes a blocking one of its own from it). */
  private readonly connection: Redis;

  constructor(opts: JobWorkerOptions) {
    this.records = opts.records;
    this.definitions = opts.definitions;
    this.logger = opts.logger;
    this.maxOutputBytes = opts.maxOutputBytes;
    const lockMs = opts.lockMs ?? 10_000;
    this.connection = blockingRedis(opts.url);
    const retentionS = Math.ceil(opts.retentionMs / 1000);
    this.bull = new bullmq.Worker(
      opts.queueName,
      (job, _token, signal) => this.track(job, signal),
      {
        connection: this.connection,
        prefix: 'bull',
        concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
        lockDuration: lockMs,
        stalledInterval: lockMs,
        // A job whose worker died is handed out again, however often: the worker that gets it
        // sees it was running and ends it as INTERRUPTED, or runs it once more (see claim).
        maxStalledCount: Number.MAX_SAFE_INTEGER,
        removeOnComplete: { age: retentionS },
        removeOnFail: { age: retentionS },
      },
    );
    this.bull.on('error', (error) => this.logger.warn({ err: error }, 'worker error'));
    // Only when a write of the job's state failed (Redis went away under it).
    this.bull.on('failed', (job) => {
      if (job?.id) void this.interrupt(job.id, 'the worker lost track of the job').catch(() => {});
    });
    this.cancels = blockingRedis(opts.url);
    this.cancels.on('message', (_channel: string, jobId: string) => {
      this.abort(jobId);
    });
  }

  /** Resolves once the worker is connected and hears cancellations. */
  async ready(): Promise<void> {
    await Promise.all([
      this.cancels.subscribe(this.records.cancelChannel),
      this.bull.waitUntilReady(),
    ]);
  }

  /** Aborts the handler of a cancelled job, if it runs here. */
  abort(jobId: string): void {
    this.running.abort(jobId, new Error('job cancelled'));
  }

  /**
   * Stops taking jobs, gives running ones the grace period, then interrupts the rest. With Redis
   * gone, BullMQ's own close waits for it for ever: past the grace period and CLOSE_BOUND_MS the
   * connections are dropped instead (a job left running is then handed to another worker, which
   * finds it was running and interrupts it).
   */
  async close(graceMs: number | undefined): Promise<void> {
    const orderly = (async () => {
      await this.bull.pause(true);
      await this.running.stop(
        graceMs,
        (jobId) =>
          this.interrupt(jobId, 'the worker shut down while the job ran').catch(() => undefined),
        'worker shutting down',
      );
      await this.bull.close(true);
      await this.bull.disconnect();
    })();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), (graceMs ?? 0) + CLOSE_BOUND_MS);
    });
    const ended = await Promise.race([orderly.then(() => 'closed' as const), bound]);
    clearTimeout(timer);
    if (ended === 'timeout') {
      orderly.catch(() => {});
      this.logger.warn('the worker could not close in time (is Redis down?): disconnecting');
      this.connection.disconnect();
    }
    this.cancels.disconnect();
  }

  private track(job: Job<QueuedJob>, signal: AbortSignal | undefined): Promise<void> {
    const jobId = job.id!;
    return this.running
      .start(jobId, (own) => {
        // BullMQ aborts its signal when it gives up the job (a lost lock).
        signal?.addEventListener('abort', () => this.running.abort(jobId, signal.reason), {
          once: true,
        });
        return this.process(job, own);
      })
      .finally(() => this.records.forget(jobId));
  }

  private async process(job: Job<QueuedJob>, signal: AbortSignal): Promise<void> {
    const jobId = job.id!;
    const started = job.data.record ? (JSON.parse(job.data.record) as JobRecord) : undefined;
    let running: JobRecord | undefined;
    if (started && this.definitions.has(started.tool)) {
      // The record as its start wrote it: if nobody wrote it since (no cancel, no earlier
      // delivery of this job), this write succeeds and the job runs, without a read first.
      this.records.remember(started);
      const written = await this.records.write(started, runningPatch(started));
      // (Cancelling: the read below finds it so, and finishes the cancel.)
      if (written !== CANCELLING) running = written;
    }
    if (!running) {
      const record = await this.records.read(jobId);
      running = record && (await this.claim(record));
    }
    if (running) await this.run(running, signal);
  }

  /**
   * Marks a job that was read from Redis running, if it may run: undefined if it finished, has
   * no handler here, or was running when its worker died and may not run again.
   */
  private async claim(record: JobRecord): Promise<JobRecord | undefined> {
    const jobId = record.id;
    if (isTerminal(record.status)) return undefined;
    this.records.remember(record);
    const definition = this.definitions.get(record.tool);
    if (!definition) {
      await this.records.update(jobId, noHandlerHere(record.tool), { finish: true });
      return undefined;
    }
    if (record.status === 'running' && !runsAgain(record, definition)) {
      // It was running when its worker died, and may not run again.
      await this.interrupt(jobId, 'the worker running the job stopped');
      return undefined;
    }
    const running = await this.records.update(jobId, runningPatch(record));
    return running?.status === 'running' ? running : undefined;
  }

  /** Runs the handler of a job marked running, and writes how it ended. */
  private async run(running: JobRecord, signal: AbortSignal): Promise<void> {
    const jobId = running.id;
    // Progress writes, kept in order.
    let writes: Promise<unknown> = Promise.resolve();
    const end = await runHandler(running, this.definitions.get(running.tool)!, {
      signal,
      logger: this.logger,
      maxOutputBytes: this.maxOutputBytes,
      progress: (progress) => {
        writes = writes
          .then(async () => {
            if (signal.aborted) return;
            const now = await this.records.update(jobId, { progress });
            // Cancelled while its cancel message was missed (pub/sub keeps none for a worker
            // that was reconnecting): the handler hears of it at its next progress.
            if (now && isTerminal(now.status)) this.running.abort(jobId, new Error('cancelled'));
          })
          .catch((error: unknown) => this.logger.warn({ err: error, jobId }, 'progress lost'));
      },
      settled: () => writes,
    });
    if (end) await this.records.update(jobId, end, { finish: true });
  }

  private interrupt(jobId: string, message: string) {
    return this.records.update(jobId, interrupted(message), { finish: true });
  }
}

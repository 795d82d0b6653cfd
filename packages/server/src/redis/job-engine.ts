import { randomUUID } from 'node:crypto';
import { isTerminal } from '@signet/protocol';
import type * as BullMQ from 'bullmq';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobChangeListener } from '../backend.ts';
import { SignetError, StoreUnavailableError } from '../errors.ts';
import {
  assertJobTool,
  assertSameStart,
  DEFAULT_RETENTION_MS,
  NOTHING_RESERVED,
  ownedBy,
  unfinishedJobsRefusal,
} from '../jobs/lifecycle.ts';
import { newJobRecord, recordToState } from '../jobs/record.ts';
import type {
  JobAdmission,
  JobDefinition,
  JobEngine,
  JobUpdate,
  SequencedJobState,
  StartJobRequest,
} from '../jobs/types.ts';
import { requirePeer } from '../peers.ts';
import type { JobRecord } from '../stores/types.ts';
import { ChangeFeed, jobUpdates } from './change-feed.ts';
import { RedisJobRecords } from './scripts.ts';
import { JobWorker, type QueuedJob } from './worker.ts';

// An optional peer dependency: only users of the Redis backend need it.
const bullmq = requirePeer<typeof BullMQ>('bullmq', '@signet/server/redis');

export interface BullJobEngineOptions {
  url: string;
  /** The request-path connection (fail-fast). */
  redis: Redis;
  definitions: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  /** Run job handlers in this process (a worker), or only enqueue and answer (an API server). */
  runHandlers: boolean;
  concurrency?: number;
  retentionMs?: number;
  /** The largest job output kept (default DEFAULT_MAX_OUTPUT_BYTES); larger fails the job. */
  maxOutputBytes?: number | undefined;
  /** How soon a dead worker's job is noticed (BullMQ lock duration; default 10 s). */
  lockMs?: number;
  queueName?: string;
  prefix?: string;
  now?: () => number;
  /** Told of every status this process writes (metrics, the audit log). */
  onJobChange?: JobChangeListener;
}

/** Records up to this size ride along in the BullMQ job, so the worker need not read them. */
const CARRIED_RECORD_MAX = 4_096;

/** A start's place in its client's unfinished set (see ADMIT in scripts.ts). */
class Reservation implements JobAdmission {
  /** Set once the start's script has run: it took the place over, or gave it back. */
  settled = false;

  constructor(
    private readonly records: RedisJobRecords,
    readonly clientId: string,
    readonly id: string,
  ) {}

  release(): void {
    if (this.settled) return;
    this.settled = true;
    // (Not awaited: a reservation that cannot be given back now lapses on its own.)
    this.records.unreserve(this.clientId, this.id).catch(() => {});
  }
}

/**
 * Jobs on Redis and BullMQ, with the semantics of the embedded engine. BullMQ queues, delivers
 * and locks jobs and notices dead workers; the Signet view of each job (status, progress,
 * output, the watch cursor) is a record in Redis with one entry per change, and every change is
 * announced on a stream of Signet's own (BullMQ's event stream carries several events of its own
 * per job), which API servers follow once they serve a watch_job.
 */
export class BullJobEngine implements JobEngine {
  private readonly definitions: ReadonlyMap<string, JobDefinition>;
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly queue: Queue;
  private readonly records: RedisJobRecords;
  private readonly feed: ChangeFeed;
  /** This process's handlers, if it runs them. */
  private readonly worker: JobWorker | undefined;

  constructor(opts: BullJobEngineOptions) {
    this.definitions = opts.definitions;
    this.retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
    this.now = opts.now ?? Date.now;
    const name = opts.queueName ?? 'signet-jobs';
    this.records = new RedisJobRecords({
      redis: opts.redis,
      prefix: opts.prefix ?? 'signet',
      queueName: name,
      retentionMs: this.retentionMs,
      now: this.now,
      written: (record) => this.feed.announce(record),
      cancelling: (jobId) => this.worker?.abort(jobId),
      ...(opts.onJobChange ? { changed: opts.onJobChange } : {}),
    });
    this.feed = new ChangeFeed(opts.redis, opts.url, this.records.changeStream, opts.logger);
    this.queue = new bullmq.Queue(name, { connection: opts.redis, prefix: 'bull' });
    this.queue.on('error', (error) => opts.logger.warn({ err: error }, 'queue error'));
    this.worker = opts.runHandlers
      ? new JobWorker({
          url: opts.url,
          queueName: name,
          records: this.records,
          definitions: opts.definitions,
          logger: opts.logger,
          concurrency: opts.concurrency,
          retentionMs: this.retentionMs,
          maxOutputBytes: opts.maxOutputBytes,
          lockMs: opts.lockMs,
        })
      : undefined;
  }

  /** Resolves once the worker (if any) is connected and hears cancellations. */
  async ready(): Promise<void> {
    await this.worker?.ready();
  }

  /**
   * Global, through the client's unfinished set in Redis (see ADMIT in scripts.ts): exact, but
   * for a start whose job is not written within its reservation's RESERVATION_MS.
   */
  async admitStart(clientId: string, requestId: string, max: number): Promise<JobAdmission> {
    return this.guard(async () => {
      const reservation = new Reservation(this.records, clientId, randomUUID());
      const admitted = await this.records.admit(clientId, requestId, reservation.id, max);
      if (admitted === 2) return reservation;
      if (admitted === 1) return NOTHING_RESERVED;
      throw unfinishedJobsRefusal(max);
    });
  }

  async start(request: StartJobRequest): Promise<{ jobId: string; seq: number }> {
    assertJobTool(this.definitions, request.tool);
    return this.guard(async () => {
      const jobId = randomUUID();
      const claim = JSON.stringify({ jobId, argsHash: request.argsHash, tool: request.tool });
      const record = newJobRecord(jobId, request, this.now());
      const text = JSON.stringify(record);
      const reservation =
        request.admission instanceof Reservation && request.admission.clientId === request.clientId
          ? request.admission
          : undefined;
      const started = await this.records.start(record, claim, text, reservation?.id);
      // (The script took the reservation's place over, or gave it back for a retry.)
      if (reservation) reservation.settled = true;
      if (started === 1) {
        const data: QueuedJob = { jobId };
        if (text.length <= CARRIED_RECORD_MAX) data.record = text;
        await this.queue.add(request.tool, data, { jobId, attempts: 1 });
        return { jobId, seq: record.seq };
      }
      // The request key was taken: a retry of this start, or another start reusing its id.
      const existing = JSON.parse(String(started)) as {
        jobId: string;
        argsHash: string;
        tool: string;
      };
      assertSameStart(existing, request);
      const id = existing.jobId;
      const current = await this.records.read(id);
      if (current && current.status !== 'queued') return { jobId: id, seq: current.seq };
      // The job may never have been written or queued: a start that failed part-way (Redis went
      // away between its steps) is finished by its retry. Both steps below are idempotent (and
      // BullMQ ignores a job id it already has).
      const created = newJobRecord(id, request, this.now());
      await this.records.create(created);
      await this.queue.add(request.tool, { jobId: id }, { jobId: id, attempts: 1 });
      // (Read again: a job that was there already may have moved on since.)
      const seq = (await this.records.read(id))?.seq ?? created.seq;
      return { jobId: id, seq };
    });
  }

  async get(clientId: string, jobId: string): Promise<SequencedJobState | undefined> {
    return this.guard(async () => {
      const record = await this.owned(clientId, jobId);
      return record && recordToState(record);
    });
  }

  async cancel(clientId: string, jobId: string): Promise<SequencedJobState | undefined> {
    return this.guard(async () => {
      const record = await this.owned(clientId, jobId);
      if (!record) return undefined;
      if (isTerminal(record.status)) return recordToState(record);
      const updated = await this.records.update(jobId, { status: 'cancelled' }, { finish: true });
      // A worker that has it running aborts it when it hears of the change (see JobWorker).
      return updated && recordToState(updated);
    });
  }

  async watch(
    clientId: string,
    jobId: string,
    after: string | undefined,
    signal: AbortSignal,
  ): Promise<AsyncIterable<JobUpdate> | undefined> {
    await this.guard(() => this.feed.listen());
    // Listen before reading, so that no change falls between the two.
    const changes = this.feed.changesOf(jobId, signal);
    const record = await this.guard(() => this.owned(clientId, jobId)).catch((error: unknown) => {
      changes.close();
      throw error;
    });
    if (!record) {
      changes.close();
      return undefined;
    }
    return jobUpdates(record, after, changes, signal, (id, seq) =>
      this.records.changesFrom(id, seq),
    );
  }

  async close(opts: { graceMs?: number } = {}): Promise<void> {
    await this.worker?.close(opts.graceMs);
    await this.feed.close();
    await this.queue.close();
  }

  private async owned(clientId: string, jobId: string): Promise<JobRecord | undefined> {
    return ownedBy(await this.records.read(jobId), clientId, this.retentionMs, this.now());
  }

  /** Store failures become 503 STORE_UNAVAILABLE; Signet's own refusals pass through. */
  private async guard<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof SignetError) throw error;
      throw new StoreUnavailableError(error);
    }
  }
}

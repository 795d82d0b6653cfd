import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isTerminal } from '@signet/protocol';
import type { Logger } from 'pino';
import { ClientCounts } from '../limits.ts';
import type { JobPatch, JobRecord, JobStore } from '../stores/types.ts';
import {
  assertJobTool,
  assertSameStart,
  DEFAULT_CONCURRENCY,
  DEFAULT_RETENTION_MS,
  interrupted,
  JobChanges,
  NOTHING_RESERVED,
  noHandlerHere,
  ownedBy,
  RunningHandlers,
  runHandler,
  runningPatch,
  runsAgain,
  unfinishedJobsRefusal,
} from './lifecycle.ts';
import { newJobRecord, recordToState } from './record.ts';
import type {
  JobAdmission,
  JobDefinition,
  JobEngine,
  JobUpdate,
  SequencedJobState,
  StartJobRequest,
} from './types.ts';

export interface LocalJobEngineOptions {
  store: JobStore;
  definitions: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  /** Handlers running at once (default 4). */
  concurrency?: number;
  /** How long a finished job's result is kept (default 1 hour). */
  retentionMs?: number;
  /** The largest job output kept (default DEFAULT_MAX_OUTPUT_BYTES); larger fails the job. */
  maxOutputBytes?: number | undefined;
  now?: () => number;
}

/**
 * Runs job handlers in this process over a synchronous `JobStore` (memory or SQLite). The queue
 * is fair: when it is full, clients take turns, so one client's burst cannot starve the others.
 */
export class LocalJobEngine implements JobEngine {
  private readonly store: JobStore;
  private readonly definitions: ReadonlyMap<string, JobDefinition>;
  private readonly logger: Logger;
  private readonly concurrency: number;
  private readonly retentionMs: number;
  private readonly maxOutputBytes: number | undefined;
  private readonly now: () => number;
  /** Queued job ids per client, and when each client was last served (for taking turns). */
  private readonly queues = new Map<string, string[]>();
  private readonly served = new Map<string, number>();
  private turn = 0;
  private readonly running = new RunningHandlers();
  private readonly changes = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;
  private accepting = true;
  /** Each client's queued and running jobs, and the starts admitted but not yet written. */
  private readonly unfinished = new ClientCounts();
  private readonly reserved = new ClientCounts();

  constructor(opts: LocalJobEngineOptions) {
    this.store = opts.store;
    this.definitions = opts.definitions;
    this.logger = opts.logger;
    this.concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
    this.retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
    this.maxOutputBytes = opts.maxOutputBytes;
    this.now = opts.now ?? Date.now;
    this.changes.setMaxListeners(0);
    this.recover();
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(10, Math.min(this.retentionMs / 4, 60_000)),
    );
    this.sweeper.unref();
    this.pump();
  }

  async admitStart(clientId: string, requestId: string, max: number): Promise<JobAdmission> {
    // Exact: a start counts from its admission on, as a reservation and then as its job.
    if (this.unfinished.get(clientId) + this.reserved.get(clientId) < max) {
      this.reserved.add(clientId, 1);
      let held = true;
      return {
        release: () => {
          if (held) this.reserved.add(clientId, -1);
          held = false;
        },
      };
    }
    if (this.store.findByRequest(clientId, requestId)) return NOTHING_RESERVED;
    throw unfinishedJobsRefusal(max);
  }

  async start(request: StartJobRequest): Promise<{ jobId: string; seq: number }> {
    assertJobTool(this.definitions, request.tool);
    const now = this.now();
    const { record, created } = this.store.createOrGet(newJobRecord(randomUUID(), request, now));
    // (In the same turn: the job, if new, counts instead of the reservation.)
    if (created) this.unfinished.add(record.clientId, 1);
    request.admission?.release();
    if (!created) {
      assertSameStart(record, request);
      return { jobId: record.id, seq: record.seq };
    }
    this.enqueue(record);
    this.pump();
    return { jobId: record.id, seq: record.seq };
  }

  async get(clientId: string, jobId: string): Promise<SequencedJobState | undefined> {
    const record = this.owned(clientId, jobId);
    return record && recordToState(record);
  }

  async cancel(clientId: string, jobId: string): Promise<SequencedJobState | undefined> {
    const record = this.owned(clientId, jobId);
    if (!record) return undefined;
    if (isTerminal(record.status)) return recordToState(record);
    if (record.status === 'queued') this.dequeue(record);
    const cancelled = this.finish(record.id, { status: 'cancelled' });
    this.running.abort(jobId, new Error('job cancelled'));
    return cancelled && recordToState(cancelled);
  }

  async watch(clientId: string, jobId: string, after: string | undefined, signal: AbortSignal) {
    const record = this.owned(clientId, jobId);
    return record && this.updates(record, after === undefined ? undefined : Number(after), signal);
  }

  private async *updates(
    record: JobRecord,
    after: number | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<JobUpdate> {
    // Listen before reading the store, so no change falls between the two.
    const live = new JobChanges(this.changes, record.id, signal);
    try {
      let last = -1;
      const known = after !== undefined && Number.isInteger(after) && after <= record.seq;
      const backlog = known ? this.store.eventsAfter(record.id, after) : [];
      const catchUp = known && backlog.length > 0 && backlog[0]!.seq === after + 1 ? backlog : null;
      if (catchUp) {
        for (const event of catchUp) {
          last = event.seq;
          yield { id: String(event.seq), state: recordToState(event.record) };
          if (isTerminal(event.record.status)) return;
        }
      } else if (!(known && after === record.seq)) {
        // Unknown cursor or none: start from the current state.
        const current = this.store.get(record.id) ?? record;
        last = current.seq;
        yield { id: String(current.seq), state: recordToState(current) };
        if (isTerminal(current.status)) return;
      } else {
        last = record.seq;
        if (isTerminal(record.status)) return;
      }
      while (!signal.aborted) {
        for (const changed of (await live.next()).records) {
          if (changed.seq <= last) continue;
          last = changed.seq;
          yield { id: String(changed.seq), state: recordToState(changed) };
          if (isTerminal(changed.status)) return;
        }
      }
    } finally {
      live.close();
    }
  }

  async close(opts: { graceMs?: number } = {}): Promise<void> {
    this.accepting = false;
    clearInterval(this.sweeper);
    await this.running.stop(
      opts.graceMs,
      (jobId) => this.finish(jobId, interrupted('the server shut down while the job ran')),
      new Error('server shutting down'),
    );
  }

  private owned(clientId: string, jobId: string): JobRecord | undefined {
    return ownedBy(this.store.get(jobId), clientId, this.retentionMs, this.now());
  }

  private enqueue(record: JobRecord): void {
    const queue = this.queues.get(record.clientId);
    if (queue) queue.push(record.id);
    else this.queues.set(record.clientId, [record.id]);
    this.emit(record);
  }

  private dequeue(record: JobRecord): void {
    const queue = this.queues.get(record.clientId);
    if (!queue) return;
    const index = queue.indexOf(record.id);
    if (index >= 0) queue.splice(index, 1);
    if (queue.length === 0) this.queues.delete(record.clientId);
  }

  /** The next queued job: the client served longest ago goes first (round robin). */
  private takeNext(): string | undefined {
    let next: string | undefined;
    for (const clientId of this.queues.keys()) {
      if (next === undefined || (this.served.get(clientId) ?? -1) < (this.served.get(next) ?? -1)) {
        next = clientId;
      }
    }
    if (next === undefined) return undefined;
    const queue = this.queues.get(next)!;
    const jobId = queue.shift();
    if (queue.length === 0) this.queues.delete(next);
    this.served.set(next, ++this.turn);
    return jobId;
  }

  private pump(): void {
    while (this.accepting && this.running.size < this.concurrency) {
      const jobId = this.takeNext();
      if (jobId === undefined) return;
      this.run(jobId);
    }
  }

  private run(jobId: string): void {
    const queued = this.store.get(jobId);
    if (queued?.status !== 'queued') return;
    const definition = this.definitions.get(queued.tool);
    const record = this.update(jobId, runningPatch(queued));
    if (!record) return;
    if (!definition) {
      this.finish(jobId, noHandlerHere(queued.tool));
      return;
    }
    void this.running
      .start(jobId, async (signal) => {
        const end = await runHandler(record, definition, {
          signal,
          logger: this.logger,
          maxOutputBytes: this.maxOutputBytes,
          progress: (progress) => this.update(jobId, { progress }),
        });
        if (end) this.finish(jobId, end);
      })
      .finally(() => this.pump());
  }

  private update(jobId: string, patch: JobPatch): JobRecord | undefined {
    const record = this.store.update(jobId, patch, this.now());
    if (record) this.emit(record);
    return record;
  }

  /** Moves a job to a terminal status, unless it already is in one. */
  private finish(jobId: string, patch: JobPatch): JobRecord | undefined {
    const current = this.store.get(jobId);
    if (!current || isTerminal(current.status)) return current;
    const now = this.now();
    const finished = this.store.update(jobId, { ...patch, finishedAt: now }, now);
    if (!finished) return undefined;
    // (Counted out before anyone hears of it: a watcher that saw the end may start another.)
    this.unfinished.add(finished.clientId, -1);
    this.emit(finished);
    return finished;
  }

  private emit(record: JobRecord): void {
    this.changes.emit(record.id, record);
  }

  /** After a restart: queued jobs queue again; running ones were cut off by the crash. */
  private recover(): void {
    for (const record of this.store.listByStatus(['queued', 'running'])) {
      this.unfinished.add(record.clientId, 1);
      if (record.status === 'queued') {
        this.enqueue(record);
      } else if (runsAgain(record, this.definitions.get(record.tool))) {
        const requeued = this.update(record.id, { status: 'queued', progress: null });
        if (requeued) this.enqueue(requeued);
      } else {
        this.finish(record.id, interrupted('the server stopped while the job ran'));
      }
    }
  }

  private sweep(): void {
    try {
      this.store.deleteFinishedBefore(this.now() - this.retentionMs);
    } catch (error) {
      this.logger.warn({ err: error }, 'could not delete expired jobs');
    }
  }
}

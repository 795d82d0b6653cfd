import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isTerminal, type JobState } from '@signet/protocol';
import type { Logger } from 'pino';
import { SignetError } from '../errors.ts';
import type { JobRecord, JobStore } from '../stores/types.ts';
import { checkProgress, newJobRecord, recordToState } from './record.ts';
import { safeToolMessage } from './tool-error.ts';
import type { JobDefinition, JobEngine, JobUpdate, StartJobRequest } from './types.ts';

export interface LocalJobEngineOptions {
  store: JobStore;
  definitions: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  /** Handlers running at once (default 4). */
  concurrency?: number;
  /** How long a finished job's result is kept (default 1 hour). */
  retentionMs?: number;
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
  private readonly now: () => number;
  /** Queued job ids per client, and when each client was last served (for taking turns). */
  private readonly queues = new Map<string, string[]>();
  private readonly served = new Map<string, number>();
  private turn = 0;
  private readonly running = new Map<
    string,
    { controller: AbortController; done: Promise<void> }
  >();
  private readonly changes = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;
  private accepting = true;

  constructor(opts: LocalJobEngineOptions) {
    this.store = opts.store;
    this.definitions = opts.definitions;
    this.logger = opts.logger;
    this.concurrency = opts.concurrency ?? 4;
    this.retentionMs = opts.retentionMs ?? 3_600_000;
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

  async start(request: StartJobRequest): Promise<{ jobId: string }> {
    if (!this.definitions.has(request.tool)) {
      throw new SignetError('UNKNOWN_TOOL', `no job tool "${request.tool}"`);
    }
    const now = this.now();
    const { record, created } = this.store.createOrGet(newJobRecord(randomUUID(), request, now));
    if (!created) {
      if (record.argsHash !== request.argsHash || record.tool !== request.tool) {
        throw new SignetError(
          'REQUEST_ID_REUSED',
          'this request_id already started a job with other arguments',
        );
      }
      return { jobId: record.id };
    }
    this.enqueue(record);
    this.pump();
    return { jobId: record.id };
  }

  async get(clientId: string, jobId: string): Promise<JobState | undefined> {
    const record = this.owned(clientId, jobId);
    return record && recordToState(record);
  }

  async cancel(clientId: string, jobId: string): Promise<JobState | undefined> {
    const record = this.owned(clientId, jobId);
    if (!record) return undefined;
    if (isTerminal(record.status)) return recordToState(record);
    if (record.status === 'queued') this.dequeue(record);
    const cancelled = this.finish(record.id, { status: 'cancelled' });
    // The handler sees the abort; whatever it returns afterwards is ignored.
    this.running.get(jobId)?.controller.abort(new Error('job cancelled'));
    return cancelled && recordToState(cancelled);
  }

  async watch(
    clientId: string,
    jobId: string,
    after: string | undefined,
    signal: AbortSignal,
  ): Promise<AsyncIterable<JobUpdate> | undefined> {
    const record = this.owned(clientId, jobId);
    if (!record) return undefined;
    return this.updates(record, after === undefined ? undefined : Number(after), signal);
  }

  private async *updates(
    record: JobRecord,
    after: number | undefined,
    signal: AbortSignal,
  ): AsyncGenerator<JobUpdate> {
    // Listen before reading the store, so no change falls between the two.
    const live = this.listen(record.id, signal);
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
        for (const changed of await live.next()) {
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

  /**
   * The changes of one job as they are emitted, in order: `next()` waits for some (or for
   * `signal`, then gives none). (`events.on` does the same at several times the cost, and builds
   * an AbortError with its stack for every watch that ends by the signal.)
   */
  private listen(jobId: string, signal: AbortSignal) {
    let changes: JobRecord[] = [];
    let wake: (() => void) | undefined;
    const onChange = (changed: JobRecord) => {
      changes.push(changed);
      wake?.();
    };
    const onAbort = () => wake?.();
    this.changes.on(jobId, onChange);
    signal.addEventListener('abort', onAbort);
    return {
      next: async (): Promise<JobRecord[]> => {
        if (changes.length === 0 && !signal.aborted) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        const taken = changes;
        changes = [];
        return taken;
      },
      close: () => {
        this.changes.off(jobId, onChange);
        signal.removeEventListener('abort', onAbort);
      },
    };
  }

  async close(opts: { graceMs?: number } = {}): Promise<void> {
    this.accepting = false;
    clearInterval(this.sweeper);
    const pending = [...this.running.values()].map((run) => run.done);
    if (pending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(pending),
        new Promise((resolve) => {
          timer = setTimeout(resolve, opts.graceMs ?? 10_000);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const [jobId, run] of this.running) {
      this.finish(jobId, {
        status: 'error',
        error: { code: 'INTERRUPTED', message: 'the server shut down while the job ran' },
      });
      run.controller.abort(new Error('server shutting down'));
    }
  }

  private owned(clientId: string, jobId: string): JobRecord | undefined {
    const record = this.store.get(jobId);
    if (!record || record.clientId !== clientId) return undefined;
    if (record.finishedAt !== null && record.finishedAt + this.retentionMs <= this.now()) {
      return undefined;
    }
    return record;
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
    const record = this.update(jobId, { status: 'running', attempts: queued.attempts + 1 });
    if (!record) return;
    if (!definition) {
      this.finish(jobId, {
        status: 'error',
        error: { code: 'TOOL_FAILED', message: `no handler for "${queued.tool}" here` },
      });
      return;
    }
    const controller = new AbortController();
    const done = this.execute(record, definition, controller).finally(() => {
      this.running.delete(jobId);
      this.pump();
    });
    this.running.set(jobId, { controller, done });
  }

  private async execute(
    record: JobRecord,
    definition: JobDefinition,
    controller: AbortController,
  ): Promise<void> {
    const { id } = record;
    const live = () => !controller.signal.aborted;
    try {
      const output = await definition.handler(record.args, {
        jobId: id,
        clientId: record.clientId,
        signal: controller.signal,
        attempt: record.attempts,
        progress: (progress) => {
          if (live()) this.update(id, { progress: checkProgress(progress) });
        },
      });
      if (!live()) return;
      const checked = definition.contract.output.safeParse(output);
      if (!checked.success) {
        this.logger.error(
          { jobId: id, tool: record.tool, issues: checked.error.issues },
          'job output does not match its contract',
        );
        this.finish(id, {
          status: 'error',
          error: { code: 'TOOL_FAILED', message: 'the job produced an invalid output' },
        });
        return;
      }
      this.finish(id, { status: 'done', output: checked.data });
    } catch (error) {
      if (!live()) return;
      this.logger.error({ jobId: id, tool: record.tool, err: error }, 'job handler failed');
      this.finish(id, {
        status: 'error',
        error: { code: 'TOOL_FAILED', message: safeToolMessage(error, 'the job failed') },
      });
    }
  }

  private update(jobId: string, patch: Parameters<JobStore['update']>[1]): JobRecord | undefined {
    const record = this.store.update(jobId, patch, this.now());
    if (record) this.emit(record);
    return record;
  }

  /** Moves a job to a terminal status, unless it already is in one. */
  private finish(jobId: string, patch: Parameters<JobStore['update']>[1]): JobRecord | undefined {
    const current = this.store.get(jobId);
    if (!current || isTerminal(current.status)) return current;
    return this.update(jobId, { ...patch, finishedAt: this.now() });
  }

  private emit(record: JobRecord): void {
    this.changes.emit(record.id, record);
  }

  /** After a restart: queued jobs queue again; running ones were cut off by the crash. */
  private recover(): void {
    for (const record of this.store.listByStatus(['queued', 'running'])) {
      const definition = this.definitions.get(record.tool);
      if (record.status === 'queued') {
        this.enqueue(record);
      } else if (definition?.contract.retryable && record.attempts < 2) {
        const requeued = this.update(record.id, { status: 'queued', progress: null });
        if (requeued) this.enqueue(requeued);
      } else {
        this.finish(record.id, {
          status: 'error',
          error: { code: 'INTERRUPTED', message: 'the server stopped while the job ran' },
        });
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

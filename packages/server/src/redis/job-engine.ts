import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isTerminal, type JobProgress, type JobState } from '@signet/protocol';
import { type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { SignetError, StoreUnavailableError } from '../errors.ts';
import { checkProgress, newJobRecord, recordToState } from '../jobs/record.ts';
import { safeToolMessage } from '../jobs/tool-error.ts';
import type { JobDefinition, JobEngine, JobUpdate, StartJobRequest } from '../jobs/types.ts';
import type { JobPatch, JobRecord } from '../stores/types.ts';
import { blockingRedis } from './connection.ts';

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
  /** How soon a dead worker's job is noticed (BullMQ lock duration; default 10 s). */
  lockMs?: number;
  queueName?: string;
  prefix?: string;
  now?: () => number;
}

/**
 * How many announcements the change stream keeps: a reader that falls further behind misses
 * some, and its watchers see those changes at their next recheck (RECHECK_MS).
 */
const CHANGE_STREAM_LENGTH = 10_000;
/** How often a watcher reads its job's log even if no change was announced. */
const RECHECK_MS = 1_000;
/** Records up to this size ride along in the BullMQ job, so the worker need not read them. */
const CARRIED_RECORD_MAX = 4_096;
const KEY_COUNT = 5;
/** How long an unfinished job's state is kept, at most (counted from its start). */
const UNFINISHED_TTL_MS = 7 * 24 * 3_600_000;

// The scripts below change a job in one round trip: its record, its change log, their expiry,
// the announcement on the deployment's change stream (read by API servers serving watch_job)
// and, for a cancel, the message on the cancel channel that workers listen to. KEYS: record,
// change log, change stream, request key, cancel channel.

/**
 * Appends a change: record and log, their expiry (when `ttl` is given: a job's first and last
 * change), and (unless `quiet`) the announcement. A new job's first state needs none: nobody can
 * be watching a job before its start has answered.
 */
const CHANGE = `
local function change(seq, record, ttl, jobId, status, quiet)
  redis.call('HSET', KEYS[1], 'seq', seq, 'record', record)
  redis.call('RPUSH', KEYS[2], record)
  if ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  if quiet then return end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', '${CHANGE_STREAM_LENGTH}', '*', 'jobId', jobId, 'record', record)
  if status == 'cancelled' then redis.call('PUBLISH', KEYS[5], jobId) end
end
`;

/**
 * Writes a new version of a job record if nobody wrote one since `expected` was read: job state
 * is changed by API servers (cancel) and workers (progress, result) at once. Returns 1 when
 * written, 0 when someone wrote since, 2 when a cancel is under way. A cancel that finds the
 * record changed marks the job `cancelling`, after which the worker's writes are refused (2), so
 * that a job reporting progress back to back cannot outrun its cancel. ARGV: expected seq, next
 * seq, record, ttl, job id, status, "1" when the job finishes (its request key then gets the same
 * expiry).
 */
const WRITE_IF_SEQ = `${CHANGE}
local current = redis.call('HMGET', KEYS[1], 'seq', 'cancelling')
local seq = current[1]
local cancel = ARGV[6] == 'cancelled'
if seq ~= ARGV[1] then
  if cancel and seq then redis.call('HSET', KEYS[1], 'cancelling', '1') end
  return 0
end
if not cancel and current[2] then return 2 end
local finish = ARGV[7] == '1'
change(ARGV[2], ARGV[3], finish and ARGV[4], ARGV[5], ARGV[6])
if finish then redis.call('PEXPIRE', KEYS[4], ARGV[4]) end
return 1`;

/**
 * Starts a job: claims its request key (idempotent start), then creates the record. Returns 1,
 * or the existing claim when the request key was taken. ARGV: claim, then as WRITE_IF_SEQ.
 */
const START = `${CHANGE}
if not redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[4], 'NX') then
  return redis.call('GET', KEYS[4])
end
change(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], true)
return 1`;

/** Creates a job record unless it exists (finishing a start that failed part-way). */
const CREATE = `${CHANGE}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
change(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], true)
return 1`;

/**
 * Jobs on Redis and BullMQ, with the semantics of the embedded engine. BullMQ queues, delivers
 * and locks jobs and notices dead workers; the Signet view of each job (status, progress,
 * output, the watch cursor) is a record in Redis with one entry per change, and every change is
 * announced on a stream of Signet's own (BullMQ's event stream carries several events of its own
 * per job), which API servers follow once they serve a watch_job. Workers hear of cancellations
 * on a pub/sub channel, and decide themselves what becomes of a job whose worker died when
 * BullMQ hands it out again.
 */
export class BullJobEngine implements JobEngine {
  private readonly redis: Redis;
  private readonly definitions: ReadonlyMap<string, JobDefinition>;
  private readonly logger: Logger;
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly prefix: string;
  private readonly queue: Queue;
  private readonly changeStream: string;
  private readonly cancelChannel: string;
  /** A worker's subscription to the cancel channel. */
  private readonly cancels: Redis | undefined;
  /** The last version this process wrote of each job it runs: the next write starts from it. */
  private readonly latest = new Map<string, JobRecord>();
  /** The connection reading the change stream, once a watch_job started it. */
  private reader: Redis | undefined;
  private listening: Promise<void> | undefined;
  private closing = false;
  private readonly url: string;
  private readonly worker: Worker | undefined;
  private readonly changes = new EventEmitter();
  /** Progress writes of each running job, kept in order. */
  private readonly writes = new Map<string, Promise<unknown>>();
  /** Handlers running in this process, until they return. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(opts: BullJobEngineOptions) {
    this.redis = opts.redis;
    this.definitions = opts.definitions;
    this.logger = opts.logger;
    this.retentionMs = opts.retentionMs ?? 3_600_000;
    this.now = opts.now ?? Date.now;
    this.prefix = opts.prefix ?? 'signet';
    const name = opts.queueName ?? 'signet-jobs';
    this.changes.setMaxListeners(0);
    this.redis.defineCommand('signetWriteIfSeq', { numberOfKeys: KEY_COUNT, lua: WRITE_IF_SEQ });
    this.redis.defineCommand('signetStart', { numberOfKeys: KEY_COUNT, lua: START });
    this.redis.defineCommand('signetCreate', { numberOfKeys: KEY_COUNT, lua: CREATE });

    this.queue = new Queue(name, { connection: this.redis, prefix: 'bull' });
    this.changeStream = `${this.prefix}:changes:${name}`;
    this.cancelChannel = `${this.prefix}:cancelled:${name}`;
    this.queue.on('error', (error) => this.logger.warn({ err: error }, 'queue error'));
    this.url = opts.url;

    if (opts.runHandlers) {
      const lockMs = opts.lockMs ?? 10_000;
      this.worker = new Worker(name, (job, _token, signal) => this.track(job, signal), {
        connection: blockingRedis(opts.url),
        prefix: 'bull',
        concurrency: opts.concurrency ?? 4,
        lockDuration: lockMs,
        stalledInterval: lockMs,
        // A job whose worker died is handed out again, however often: the worker that gets it
        // sees it was running and ends it as INTERRUPTED, or runs it once more (see process).
        maxStalledCount: Number.MAX_SAFE_INTEGER,
        removeOnComplete: { age: Math.ceil(this.retentionMs / 1000) },
        removeOnFail: { age: Math.ceil(this.retentionMs / 1000) },
      });
      this.worker.on('error', (error) => this.logger.warn({ err: error }, 'worker error'));
      // Only when a write of the job's state failed (Redis went away under it).
      this.worker.on('failed', (job) => {
        if (job?.id)
          void this.interrupt(job.id, 'the worker lost track of the job').catch(() => {});
      });
      this.cancels = blockingRedis(opts.url);
      this.cancels.on('message', (_channel: string, jobId: string) => {
        if (this.running.has(jobId)) this.worker?.cancelJob(jobId);
      });
    }
  }

  /** Resolves once the worker (if any) is connected and hears cancellations. */
  async ready(): Promise<void> {
    await Promise.all([this.cancels?.subscribe(this.cancelChannel), this.worker?.waitUntilReady()]);
  }

  /**
   * Follows the change stream (once started, for good), from the first watch_job: only watchers
   * need it (polls and starts read and write Redis directly).
   */
  private listen(): Promise<void> {
    this.listening ??= (async () => {
      // From the stream's current end, so that nothing written after this call is missed
      // however long the first read takes to be sent.
      const [last] = await this.redis.xrevrange(this.changeStream, '+', '-', 'COUNT', 1);
      this.reader = blockingRedis(this.url);
      void this.followChanges(this.reader, last?.[0] ?? '0-0');
    })();
    return this.listening;
  }

  private async followChanges(reader: Redis, from: string): Promise<void> {
    let after = from;
    while (!this.closing) {
      try {
        const batches = await reader.xread(
          'COUNT',
          1000,
          'BLOCK',
          10_000,
          'STREAMS',
          this.changeStream,
          after,
        );
        for (const [, entries] of batches ?? []) {
          for (const [id, fields] of entries) {
            after = id;
            // fields: jobId, <id>, record, <the job's record as written>
            if (fields[1] !== undefined) this.changes.emit(fields[1], fields[3]);
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

  async start(request: StartJobRequest): Promise<{ jobId: string }> {
    const definition = this.definitions.get(request.tool);
    if (!definition) throw new SignetError('UNKNOWN_TOOL', `no job tool "${request.tool}"`);
    return this.guard(async () => {
      const jobId = randomUUID();
      const requestKey = this.requestKey(request.clientId, request.requestId);
      const claim = JSON.stringify({ jobId, argsHash: request.argsHash, tool: request.tool });
      const record = newJobRecord(jobId, request, this.now());
      const text = JSON.stringify(record);
      const started = await this.script('signetStart', record, requestKey, claim, { text });
      if (started === 1) {
        const data: QueuedJob = { jobId };
        if (text.length <= CARRIED_RECORD_MAX) data.record = text;
        await this.queue.add(request.tool, data, { jobId, attempts: 1 });
        return { jobId };
      }
      // The request key was taken: a retry of this start, or another start reusing its id.
      const existing = JSON.parse(String(started)) as {
        jobId: string;
        argsHash: string;
        tool: string;
      };
      if (existing.argsHash !== request.argsHash || existing.tool !== request.tool) {
        throw new SignetError(
          'REQUEST_ID_REUSED',
          'this request_id already started a job with other arguments',
        );
      }
      const id = existing.jobId;
      const current = await this.read(id);
      if (current && current.status !== 'queued') return { jobId: id };
      // The job may never have been written or queued: a start that failed part-way (Redis went
      // away between its steps) is finished by its retry. Both steps below are idempotent (and
      // BullMQ ignores a job id it already has).
      await this.script('signetCreate', newJobRecord(id, request, this.now()), requestKey, '');
      await this.queue.add(request.tool, { jobId: id }, { jobId: id, attempts: 1 });
      return { jobId: id };
    });
  }

  async get(clientId: string, jobId: string): Promise<JobState | undefined> {
    return this.guard(async () => {
      const record = await this.owned(clientId, jobId);
      return record && recordToState(record);
    });
  }

  async cancel(clientId: string, jobId: string): Promise<JobState | undefined> {
    return this.guard(async () => {
      const record = await this.owned(clientId, jobId);
      if (!record) return undefined;
      if (isTerminal(record.status)) return recordToState(record);
      const updated = await this.update(jobId, { status: 'cancelled' }, { finish: true });
      // A worker that has it running aborts it when it hears of the change (see constructor).
      return updated && recordToState(updated);
    });
  }

  async watch(
    clientId: string,
    jobId: string,
    after: string | undefined,
    signal: AbortSignal,
  ): Promise<AsyncIterable<JobUpdate> | undefined> {
    await this.guard(() => this.listen());
    // Listen before reading, so that no change falls between the two.
    const changes = this.changesOf(jobId, signal);
    const record = await this.guard(() => this.owned(clientId, jobId)).catch((error: unknown) => {
      changes.close();
      throw error;
    });
    if (!record) {
      changes.close();
      return undefined;
    }
    return this.updates(record, after, changes, signal);
  }

  private async *updates(
    record: JobRecord,
    after: string | undefined,
    changes: Changes,
    signal: AbortSignal,
  ): AsyncGenerator<JobUpdate> {
    try {
      yield* this.follow(record, after, changes, signal);
    } catch (error) {
      if (!signal.aborted) throw error;
    } finally {
      changes.close();
    }
  }

  /**
   * A watcher's view of its job's announcements: the records they carried, in order, or a flag
   * that the log must be read (an announcement without its record, or none for RECHECK_MS: one
   * can be lost while its reader reconnects or falls behind the stream's trimmed end, and a
   * watcher must still see the job end). Closes itself when `signal` aborts.
   */
  private changesOf(jobId: string, signal: AbortSignal): Changes {
    let announced: JobRecord[] = [];
    let unknown = false;
    let wake: (() => void) | undefined;
    const onChange = (record?: JobRecord | string) => {
      const parsed = typeof record === 'string' ? parseRecord(record) : record;
      // (A watcher that falls far behind reads the log instead of holding every record.)
      if (parsed === undefined || announced.length >= MAX_ANNOUNCED) unknown = true;
      else announced.push(parsed);
      wake?.();
    };
    const close = () => {
      this.changes.off(jobId, onChange);
      signal.removeEventListener('abort', close);
      wake?.();
    };
    this.changes.on(jobId, onChange);
    signal.addEventListener('abort', close);
    if (signal.aborted) close();
    return {
      next: async () => {
        if (announced.length === 0 && !unknown && !signal.aborted) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(() => {
              unknown = true;
              resolve();
            }, RECHECK_MS);
          });
          clearTimeout(timer);
          wake = undefined;
        }
        const next = { records: announced, readLog: unknown };
        announced = [];
        unknown = false;
        return next;
      },
      close,
    };
  }

  private async *follow(
    record: JobRecord,
    after: string | undefined,
    changes: Changes,
    signal: AbortSignal,
  ): AsyncGenerator<JobUpdate> {
    const cursor = after === undefined ? Number.NaN : Number(after);
    let last: number;
    let readLog: boolean;
    if (Number.isInteger(cursor) && cursor >= 0 && cursor <= record.seq) {
      last = cursor;
      readLog = true;
    } else {
      // No cursor, or one we do not know: start from the current state (read after listening).
      yield { id: String(record.seq), state: recordToState(record) };
      if (isTerminal(record.status)) return;
      last = record.seq;
      readLog = false;
    }
    const update = (event: JobRecord): JobUpdate => {
      last = event.seq;
      return { id: String(event.seq), state: recordToState(event) };
    };
    while (!signal.aborted) {
      if (readLog) {
        // The job's own log has every change, however the announcements came.
        const missed = await this.redis.lrange(this.keys(record.id)[1], last + 1, -1);
        for (const text of missed) {
          const event = JSON.parse(text) as JobRecord;
          if (event.seq <= last) continue;
          yield update(event);
          if (isTerminal(event.status)) return;
        }
      }
      const next = await changes.next();
      readLog = next.readLog;
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
  }

  async close(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.worker) {
      // Stop taking jobs, give running ones the grace period, then interrupt the rest.
      await this.worker.pause(true);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(this.running.values()),
        new Promise((resolve) => {
          timer = setTimeout(resolve, opts.graceMs ?? 10_000);
        }),
      ]);
      clearTimeout(timer);
      for (const jobId of this.running.keys()) {
        await this.interrupt(jobId, 'the worker shut down while the job ran').catch(() => {});
        this.worker.cancelJob(jobId, 'worker shutting down');
      }
      await this.worker.close(true);
      await this.worker.disconnect();
      this.cancels?.disconnect();
    }
    this.closing = true;
    await this.listening?.catch(() => {});
    this.reader?.disconnect();
    await this.queue.close();
  }

  private async track(job: Job, signal: AbortSignal | undefined): Promise<void> {
    const done = this.process(job, signal);
    this.running.set(job.id!, done);
    try {
      await done;
    } finally {
      this.running.delete(job.id!);
      this.latest.delete(job.id!);
    }
  }

  private async process(job: Job<QueuedJob>, signal: AbortSignal | undefined): Promise<void> {
    const jobId = job.id!;
    const started = job.data.record ? (JSON.parse(job.data.record) as JobRecord) : undefined;
    let running: JobRecord | undefined;
    if (started && this.definitions.has(started.tool)) {
      // The record as its start wrote it: if nobody wrote it since (no cancel, no earlier
      // delivery of this job), this write succeeds and the job runs, without a read first.
      this.latest.set(jobId, started);
      const written = await this.write(started, runningPatch(started));
      // (Cancelling: the read below finds it so, and finishes the cancel.)
      if (written !== CANCELLING) running = written;
    }
    if (!running) {
      const record = await this.read(jobId);
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
    this.latest.set(jobId, record);
    const definition = this.definitions.get(record.tool);
    if (!definition) {
      await this.update(
        jobId,
        {
          status: 'error',
          error: { code: 'TOOL_FAILED', message: `no handler for "${record.tool}" here` },
        },
        { finish: true },
      );
      return undefined;
    }
    if (record.status === 'running' && !(definition.contract.retryable && record.attempts < 2)) {
      // It was running when its worker died, and may not run again.
      await this.interrupt(jobId, 'the worker running the job stopped');
      return undefined;
    }
    const running = await this.update(jobId, runningPatch(record));
    return running?.status === 'running' ? running : undefined;
  }

  /** Runs the handler of a job marked running, and writes how it ended. */
  private async run(running: JobRecord, signal: AbortSignal | undefined): Promise<void> {
    const jobId = running.id;
    const definition = this.definitions.get(running.tool)!;
    const controller = new AbortController();
    signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    this.writes.set(jobId, Promise.resolve());
    const live = () => !controller.signal.aborted;
    try {
      const output = await definition.handler(running.args, {
        jobId,
        clientId: running.clientId,
        signal: controller.signal,
        attempt: running.attempts,
        progress: (progress: JobProgress) => {
          const checked = checkProgress(progress);
          const previous = this.writes.get(jobId) ?? Promise.resolve();
          const next = previous
            .then(async () => {
              if (!live()) return;
              const now = await this.update(jobId, { progress: checked });
              // Cancelled while its cancel message was missed (pub/sub keeps none for a worker
              // that was reconnecting): the handler hears of it at its next progress.
              if (now && isTerminal(now.status)) controller.abort(new Error('cancelled'));
            })
            .catch((error: unknown) => this.logger.warn({ err: error, jobId }, 'progress lost'));
          this.writes.set(jobId, next);
        },
      });
      await this.writes.get(jobId);
      if (!live()) return;
      const checked = definition.contract.output.safeParse(output);
      if (!checked.success) {
        this.logger.error(
          { jobId, issues: checked.error.issues },
          'job output does not match its contract',
        );
        await this.update(
          jobId,
          {
            status: 'error',
            error: { code: 'TOOL_FAILED', message: 'the job produced an invalid output' },
          },
          { finish: true },
        );
        return;
      }
      await this.update(jobId, { status: 'done', output: checked.data }, { finish: true });
    } catch (error) {
      await this.writes.get(jobId);
      if (!live()) return;
      this.logger.error({ jobId, err: error }, 'job handler failed');
      await this.update(
        jobId,
        {
          status: 'error',
          error: { code: 'TOOL_FAILED', message: safeToolMessage(error, 'the job failed') },
        },
        { finish: true },
      );
    } finally {
      this.writes.delete(jobId);
    }
  }

  private interrupt(jobId: string, message: string) {
    return this.update(
      jobId,
      { status: 'error', error: { code: 'INTERRUPTED', message } },
      { finish: true },
    );
  }

  private keys(jobId: string): [string, string] {
    return [`${this.prefix}:job:${jobId}`, `${this.prefix}:job:${jobId}:events`];
  }

  private async read(jobId: string): Promise<JobRecord | undefined> {
    const text = await this.redis.hget(this.keys(jobId)[0], 'record');
    return text === null ? undefined : (JSON.parse(text) as JobRecord);
  }

  private async owned(clientId: string, jobId: string): Promise<JobRecord | undefined> {
    const record = await this.read(jobId);
    if (!record || record.clientId !== clientId) return undefined;
    if (record.finishedAt !== null && record.finishedAt + this.retentionMs <= this.now()) {
      return undefined;
    }
    return record;
  }

  /**
   * Applies `patch` unless the job already finished (a finished job never changes), announces the
   * change, and returns the record as it now is.
   */
  private async update(
    jobId: string,
    patch: JobPatch,
    opts: { finish?: boolean } = {},
  ): Promise<JobRecord | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      // What this process wrote last, if it runs the job; if someone wrote since, the write
      // below finds out, and the loop reads the record again.
      const cached = attempt === 0 ? this.latest.get(jobId) : undefined;
      const current = cached ?? (await this.read(jobId));
      if (!current || isTerminal(current.status)) return current;
      const next = await this.write(current, patch, opts.finish);
      // The cancel's own retry will write it; so does this, in case that retry never comes (its
      // server died): either way the job ends cancelled.
      if (next === CANCELLING) return this.update(jobId, { status: 'cancelled' }, { finish: true });
      if (next) return next;
    }
    throw new Error(`job ${jobId} kept changing under a write`);
  }

  /**
   * Writes `current` with `patch` applied, unless someone wrote the job since `current` (then
   * undefined), or a cancel of it is under way (then CANCELLING, and the handler, if it runs
   * here, is aborted).
   */
  private async write(
    current: JobRecord,
    patch: JobPatch,
    finish = false,
  ): Promise<JobRecord | typeof CANCELLING | undefined> {
    const now = this.now();
    const next: JobRecord = {
      ...current,
      ...patch,
      seq: current.seq + 1,
      updatedAt: now,
      finishedAt: finish ? now : current.finishedAt,
    };
    const written = await this.script(
      'signetWriteIfSeq',
      next,
      this.requestKey(next.clientId, next.requestId),
      String(current.seq),
      { finish, ttl: finish ? this.retentionMs + 60_000 : UNFINISHED_TTL_MS },
    );
    if (written === 2) {
      this.worker?.cancelJob(next.id);
      return CANCELLING;
    }
    if (written !== 1) return undefined;
    if (this.latest.has(next.id)) this.latest.set(next.id, next);
    this.changes.emit(next.id, next);
    return next;
  }

  /**
   * Runs one of the scripts above to write `record` (as `text`, if already serialized). `first`
   * is the expected seq (WRITE_IF_SEQ) or the claim (START, CREATE); `finish` marks
   * WRITE_IF_SEQ's last write of a job.
   */
  private script(
    name: 'signetWriteIfSeq' | 'signetStart' | 'signetCreate',
    record: JobRecord,
    requestKey: string,
    first: string,
    opts: { finish?: boolean; ttl?: number; text?: string } = {},
  ): Promise<number | string> {
    const [jobKey, logKey] = this.keys(record.id);
    const keys = [jobKey, logKey, this.changeStream, requestKey, this.cancelChannel];
    const args = [
      String(record.seq),
      opts.text ?? JSON.stringify(record),
      String(opts.ttl ?? UNFINISHED_TTL_MS),
      record.id,
      record.status,
    ];
    const scripts = this.redis as unknown as RedisScripts;
    return name === 'signetWriteIfSeq'
      ? scripts.signetWriteIfSeq(...keys, first, ...args, opts.finish ? '1' : '0')
      : scripts[name](...keys, first, ...args);
  }

  private requestKey(clientId: string, requestId: string): string {
    return `${this.prefix}:request:${clientId.length}:${clientId}:${requestId}`;
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

const CANCELLING = Symbol('cancelling');

/** How many announced records a watcher holds before it reads the log instead. */
const MAX_ANNOUNCED = 100;

/** A record carried by an announcement; undefined if it is not one (then the log is read). */
function parseRecord(text: string): JobRecord | undefined {
  try {
    return JSON.parse(text) as JobRecord;
  } catch {
    return undefined;
  }
}

/** What a watcher hears of its job (see changesOf). */
interface Changes {
  next(): Promise<{ records: JobRecord[]; readLog: boolean }>;
  close(): void;
}

const runningPatch = (record: JobRecord): JobPatch => ({
  status: 'running',
  progress: null,
  attempts: record.attempts + 1,
});

/** What a BullMQ job of this engine carries. */
interface QueuedJob {
  jobId: string;
  /** The job's record as started (JSON), when small. */
  record?: string;
}

interface RedisScripts {
  signetStart(...args: string[]): Promise<number | string>;
  signetCreate(...args: string[]): Promise<number>;
  signetWriteIfSeq(...args: string[]): Promise<number>;
}

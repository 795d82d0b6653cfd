import { isTerminal } from '@signet/protocol';
import type { Redis } from 'ioredis';
import type { JobChangeListener } from '../backend.ts';
import { deltaOf, eventOf, type JobDelta } from '../stores/job-delta.ts';
import type { JobPatch, JobRecord } from '../stores/types.ts';
import { CHANGE_STREAM_LENGTH } from './change-feed.ts';

const KEY_COUNT = 6;
/** How long an unfinished job's state is kept, at most (counted from its start). */
const UNFINISHED_TTL_MS = 7 * 24 * 3_600_000;
/** How long an admitted start holds its place under the client's cap without writing its job. */
export const RESERVATION_MS = 60_000;

// The scripts below change a job in one round trip: its record, its change log, their expiry,
// the announcement on the deployment's change stream (read by API servers serving watch_job),
// for a cancel, the message on the cancel channel that workers listen to, and the client's count
// of unfinished jobs. KEYS: record, change log, change stream, request key, cancel channel, the
// client's unfinished set.
//
// The unfinished set is what the cap on unfinished jobs per client counts (ADMIT): a sorted set
// of the client's unfinished job ids and of its admitted starts' reservations, each scored with
// when it lapses (Redis's clock). A job joins it in the script that writes its first state and
// leaves it in the one that writes its last, so no crash can part the two; a job whose record
// expires unfinished (UNFINISHED_TTL_MS) and a reservation whose start never came (its process
// died) lapse with it, so the count cannot drift for good.

/** Redis's clock in ms: one clock for every replica's scores. */
const NOW = `
local function redisNow()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
`;

/**
 * Appends a change: record and log, their expiry (when `ttl` is given: a job's first and last
 * change), and (unless `quiet`) the announcement. A new job's first state needs none: nobody can
 * be watching a job before its start has answered. The log gets the change's delta (ARGV[7]) and
 * the announcement the record without its args (ARGV[8]): a job's args and output are not
 * written again with every change (issue 21, V3).
 */
const CHANGE = `
local function change(seq, record, ttl, jobId, status, quiet)
  redis.call('HSET', KEYS[1], 'seq', seq, 'record', record)
  redis.call('RPUSH', KEYS[2], ARGV[7])
  if ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  if quiet then return end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', '${CHANGE_STREAM_LENGTH}', '*', 'jobId', jobId, 'record', ARGV[8])
  if status == 'cancelled' then redis.call('PUBLISH', KEYS[5], jobId) end
end
`;

/**
 * Writes a new version of a job record if nobody wrote one since `expected` was read: job state
 * is changed by API servers (cancel) and workers (progress, result) at once. Returns 1 when
 * written, 0 when someone wrote since, 2 when a cancel is under way. A cancel that finds the
 * record changed marks the job `cancelling`, after which the worker's writes are refused (2), so
 * that a job reporting progress back to back cannot outrun its cancel. ARGV: expected seq, next
 * seq, record, ttl, job id, status, delta, announcement (see CHANGE), "1" when the job finishes (its
 * request key then gets the same expiry).
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
local finish = ARGV[9] == '1'
change(ARGV[2], ARGV[3], finish and ARGV[4], ARGV[5], ARGV[6])
if finish then
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
  redis.call('ZREM', KEYS[6], ARGV[5])
end
return 1`;

/** Counts a new job among its client's unfinished ones, for as long as its record may last. */
const COUNTED = `${NOW}
local function counted(jobId, ttl)
  redis.call('ZADD', KEYS[6], redisNow() + tonumber(ttl), jobId)
  redis.call('PEXPIRE', KEYS[6], ttl)
end
`;

/**
 * Starts a job: claims its request key (idempotent start), then creates the record, counted in
 * place of the start's reservation. Returns 1, or the existing claim when the request key was
 * taken. ARGV: claim, then as WRITE_IF_SEQ, then the reservation ("" for none).
 */
const START = `${CHANGE}${COUNTED}
if ARGV[9] ~= '' then redis.call('ZREM', KEYS[6], ARGV[9]) end
if not redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[4], 'NX') then
  return redis.call('GET', KEYS[4])
end
change(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], true)
counted(ARGV[5], ARGV[4])
return 1`;

/** Creates a job record unless it exists (finishing a start that failed part-way). */
const CREATE = `${CHANGE}${COUNTED}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
change(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], true)
counted(ARGV[5], ARGV[4])
return 1`;

/**
 * Admits a start under its client's cap (KEYS: the client's unfinished set, the start's request
 * key; ARGV: the cap, a reservation id, how long it lasts). 1: the request already started a job
 * (its retry reserves nothing, even at the cap); 2: reserved; 0: at the cap.
 */
const ADMIT = `${NOW}
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local now = redisNow()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 2`;

/** A write refused because a cancel of the job is under way. */
export const CANCELLING = Symbol('cancelling');

export interface RedisJobRecordsOptions {
  redis: Redis;
  prefix: string;
  queueName: string;
  retentionMs: number;
  now: () => number;
  /** Told of every change this process wrote (its own watchers hear of it at once). */
  written(record: JobRecord): void;
  /** Told of a job whose cancel refused a write: its handler, if it runs here, must stop. */
  cancelling(jobId: string): void;
  /** Told of every status this process wrote (a new job's `queued` included). */
  changed?: JobChangeListener;
}

/**
 * The Signet view of each job in Redis: a record with one log entry per change, written by
 * compare-and-set, since API servers and workers change one job at once.
 */
export class RedisJobRecords {
  /** The stream on which every change is announced. */
  readonly changeStream: string;
  /** The channel on which workers hear of cancels. */
  readonly cancelChannel: string;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly written: (record: JobRecord) => void;
  private readonly cancelling: (jobId: string) => void;
  private readonly changed: JobChangeListener | undefined;
  /** The last version this process wrote of each job it runs: the next write starts from it. */
  private readonly latest = new Map<string, JobRecord>();

  constructor(opts: RedisJobRecordsOptions) {
    this.redis = opts.redis;
    this.prefix = opts.prefix;
    this.retentionMs = opts.retentionMs;
    this.now = opts.now;
    this.written = opts.written;
    this.cancelling = opts.cancelling;
    this.changed = opts.changed;
    this.changeStream = `${this.prefix}:changes:${opts.queueName}`;
    this.cancelChannel = `${this.prefix}:cancelled:${opts.queueName}`;
    this.redis.defineCommand('signetWriteIfSeq', { numberOfKeys: KEY_COUNT, lua: WRITE_IF_SEQ });
    this.redis.defineCommand('signetStart', { numberOfKeys: KEY_COUNT, lua: START });
    this.redis.defineCommand('signetCreate', { numberOfKeys: KEY_COUNT, lua: CREATE });
    this.redis.defineCommand('signetAdmit', { numberOfKeys: 2, lua: ADMIT });
  }

  /**
   * Admits a start of `clientId` under a cap of `max` unfinished jobs, reserving a place for it
   * under `reservation` for `lastsMs` (see ADMIT): 2 when reserved, 1 for the retry of a start
   * that made its job, 0 at the cap.
   */
  async admit(
    clientId: string,
    requestId: string,
    reservation: string,
    max: number,
    lastsMs = RESERVATION_MS,
  ): Promise<number> {
    const scripts = this.redis as unknown as RedisScripts;
    return scripts.signetAdmit(
      this.unfinishedKey(clientId),
      this.requestKey(clientId, requestId),
      String(max),
      reservation,
      String(lastsMs),
    );
  }

  /** Gives back a reservation whose start did not write a job. */
  async unreserve(clientId: string, reservation: string): Promise<void> {
    await this.redis.zrem(this.unfinishedKey(clientId), reservation);
  }

  async read(jobId: string): Promise<JobRecord | undefined> {
    const text = await this.redis.hget(this.keys(jobId)[0], 'record');
    return text === null ? undefined : (JSON.parse(text) as JobRecord);
  }

  /**
   * The job's changes from `seq` on, oldest first: its log has every one, as deltas, each
   * rebuilt on the job's record (read with it, at once). (A log entry of an older build is a
   * whole record: rebuilt the same way.)
   */
  async changesFrom(jobId: string, seq: number): Promise<JobRecord[]> {
    const [jobKey, logKey] = this.keys(jobId);
    const replies = await this.redis.multi().hget(jobKey, 'record').lrange(logKey, seq, -1).exec();
    const [read, listed] = replies ?? [];
    const failed = read?.[0] ?? listed?.[0];
    if (!read || !listed || failed) throw failed ?? new Error('the job log read was discarded');
    const text = read[1] as string | null;
    if (text === null) return [];
    const job = JSON.parse(text) as JobRecord;
    return (listed[1] as string[]).map(
      (entry) => eventOf(job, JSON.parse(entry) as JobDelta).record,
    );
  }

  /**
   * Claims the request key of `record`'s start and writes it (`text`: the record serialized), in
   * place of `reservation` (see ADMIT). 1 when started; otherwise the claim already on the
   * request key.
   */
  async start(
    record: JobRecord,
    claim: string,
    text: string,
    reservation?: string,
  ): Promise<number | string> {
    const started = await this.script('signetStart', record, claim, { text, reservation });
    if (started === 1) this.changed?.(record);
    return started;
  }

  /** Writes the first state of a job whose start claimed its request key but failed after. */
  async create(record: JobRecord): Promise<void> {
    if ((await this.script('signetCreate', record, '')) === 1) this.changed?.(record);
  }

  /** Writes of the job `record` start from it, until `forget` (the job runs in this process). */
  remember(record: JobRecord): void {
    this.latest.set(record.id, record);
  }

  forget(jobId: string): void {
    this.latest.delete(jobId);
  }

  /**
   * Applies `patch` unless the job already finished (a finished job never changes), announces the
   * change, and returns the record as it now is.
   */
  async update(
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
  async write(
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
    const written = await this.script('signetWriteIfSeq', next, String(current.seq), {
      finish,
      ttl: finish ? this.retentionMs + 60_000 : UNFINISHED_TTL_MS,
    });
    if (written === 2) {
      this.cancelling(next.id);
      return CANCELLING;
    }
    if (written !== 1) return undefined;
    if (this.latest.has(next.id)) this.latest.set(next.id, next);
    this.written(next);
    if (patch.status !== undefined) this.changed?.(next);
    return next;
  }

  /** The key that makes a start idempotent: one job per `(clientId, requestId)`. */
  requestKey(clientId: string, requestId: string): string {
    return `${this.prefix}:request:${clientId.length}:${clientId}:${requestId}`;
  }

  /** The client's unfinished jobs and reservations (see ADMIT). */
  private unfinishedKey(clientId: string): string {
    return `${this.prefix}:unfinished:${clientId.length}:${clientId}`;
  }

  private keys(jobId: string): [string, string] {
    return [`${this.prefix}:job:${jobId}`, `${this.prefix}:job:${jobId}:events`];
  }

  /**
   * Runs one of the scripts above to write `record` (as `text`, if already serialized). `first`
   * is the expected seq (WRITE_IF_SEQ) or the claim (START, CREATE); `finish` marks
   * WRITE_IF_SEQ's last write of a job.
   */
  private script(
    name: 'signetWriteIfSeq' | 'signetStart' | 'signetCreate',
    record: JobRecord,
    first: string,
    opts: { finish?: boolean; ttl?: number; text?: string; reservation?: string | undefined } = {},
  ): Promise<number | string> {
    const [jobKey, logKey] = this.keys(record.id);
    const requestKey = this.requestKey(record.clientId, record.requestId);
    const unfinishedKey = this.unfinishedKey(record.clientId);
    const keys = [jobKey, logKey, this.changeStream, requestKey, this.cancelChannel, unfinishedKey];
    const args = [
      String(record.seq),
      opts.text ?? JSON.stringify(record),
      String(opts.ttl ?? UNFINISHED_TTL_MS),
      record.id,
      record.status,
      JSON.stringify(deltaOf(record)),
      announcement(record),
    ];
    const scripts = this.redis as unknown as RedisScripts;
    switch (name) {
      case 'signetWriteIfSeq':
        return scripts.signetWriteIfSeq(...keys, first, ...args, opts.finish ? '1' : '0');
      case 'signetStart':
        return scripts.signetStart(...keys, first, ...args, opts.reservation ?? '');
      case 'signetCreate':
        return scripts.signetCreate(...keys, first, ...args);
    }
  }
}

/**
 * What the change stream carries of a change: the record as a watcher needs it (recordToState),
 * without the args, and with the output only in the `done` change that has it.
 */
function announcement(record: JobRecord): string {
  return JSON.stringify({ ...record, args: {} });
}

interface RedisScripts {
  signetAdmit(...args: string[]): Promise<number>;
  signetStart(...args: string[]): Promise<number | string>;
  signetCreate(...args: string[]): Promise<number>;
  signetWriteIfSeq(...args: string[]): Promise<number>;
}

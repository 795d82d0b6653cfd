// The life of a job as every engine runs it. The engines differ only in where they keep jobs
// and how a job's changes reach its watchers; what a job may do, and what becomes of it, is here.
import type { EventEmitter } from 'node:events';
import type { JobProgress } from '@signet/protocol';
import type { Logger } from 'pino';
import { SignetError } from '../errors.ts';
import { DEFAULT_MAX_BODY_BYTES } from '../services.ts';
import type { JobPatch, JobRecord } from '../stores/types.ts';
import { checkProgress } from './record.ts';
import { safeToolMessage } from './tool-error.ts';
import type { JobAdmission, JobDefinition, StartJobRequest } from './types.ts';

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_RETENTION_MS = 3_600_000;
const DEFAULT_GRACE_MS = 10_000;
/**
 * The largest job output kept, as UTF-8 JSON text: as large as a request body may be. An output
 * is stored, and sent to every poll and watch of its job, so it is bounded (issue 21, V2, V3).
 */
export const DEFAULT_MAX_OUTPUT_BYTES = DEFAULT_MAX_BODY_BYTES;
/** A job runs once, and once more if it was cut off by a crash and its contract is retryable. */
const MAX_RUNS = 2;

/**
 * When a client at its cap of unfinished jobs is told to try again: its jobs' run times are not
 * known, so this is a polling interval, not a promise.
 */
export const UNFINISHED_JOBS_RETRY_AFTER_S = 1;

/** The refusal of a start past the client's cap of unfinished jobs (DESIGN 1.4, before check 6). */
export function unfinishedJobsRefusal(max: number): SignetError {
  return new SignetError(
    'RATE_LIMITED',
    `this client has ${max} unfinished jobs already; retry once one finishes`,
    {
      retryAfter: UNFINISHED_JOBS_RETRY_AFTER_S,
      details: { limit: 'unfinished_jobs', max, retry_after_s: UNFINISHED_JOBS_RETRY_AFTER_S },
    },
  );
}

/** The admission of a start that reserves nothing: the retry of a start that made its job. */
export const NOTHING_RESERVED: JobAdmission = { release() {} };

/** Refuses to start a tool that is not one of this server's jobs. */
export function assertJobTool(definitions: ReadonlyMap<string, JobDefinition>, tool: string): void {
  if (!definitions.has(tool)) throw new SignetError('UNKNOWN_TOOL', `no job tool "${tool}"`);
}

/**
 * A start whose `(clientId, requestId)` already started a job is a retry of that start, answered
 * with the same job, unless it asks for another tool or other args.
 */
export function assertSameStart(
  existing: { argsHash: string; tool: string },
  request: StartJobRequest,
): void {
  if (existing.argsHash !== request.argsHash || existing.tool !== request.tool) {
    throw new SignetError(
      'REQUEST_ID_REUSED',
      'this request_id already started a job with other arguments',
    );
  }
}

/**
 * `record` if `clientId` owns it and it is within retention; otherwise nothing, as if the job did
 * not exist (another client learns nothing of it).
 */
export function ownedBy(
  record: JobRecord | undefined,
  clientId: string,
  retentionMs: number,
  now: number,
): JobRecord | undefined {
  if (!record || record.clientId !== clientId) return undefined;
  if (record.finishedAt !== null && record.finishedAt + retentionMs <= now) return undefined;
  return record;
}

/** The change that starts a run of the job's handler. */
export function runningPatch(record: JobRecord): JobPatch {
  return { status: 'running', progress: null, attempts: record.attempts + 1 };
}

/**
 * Whether a job found running after its process died runs again. Only a retryable job does,
 * and only once: a job that keeps killing its process must not keep being handed out.
 */
export function runsAgain(record: JobRecord, definition: JobDefinition | undefined): boolean {
  return definition?.contract.retryable === true && record.attempts < MAX_RUNS;
}

/** The end of a job that was cut off and may not run again. */
export function interrupted(message: string): JobPatch {
  return { status: 'error', error: { code: 'INTERRUPTED', message } };
}

/** The end of a job that reached a process with no handler for its tool (an older build). */
export function noHandlerHere(tool: string): JobPatch {
  return {
    status: 'error',
    error: { code: 'TOOL_FAILED', message: `no handler for "${tool}" here` },
  };
}

function toolFailed(message: string): JobPatch {
  return { status: 'error', error: { code: 'TOOL_FAILED', message } };
}

export interface HandlerRun {
  signal: AbortSignal;
  logger: Logger;
  /** Records a progress report (already checked), while the run is not aborted. */
  progress(progress: JobProgress): void;
  /** Resolves once the progress recorded so far is written, where writes are asynchronous. */
  settled?(): Promise<unknown>;
  /** The largest output kept (DEFAULT_MAX_OUTPUT_BYTES); a larger one fails the job. */
  maxOutputBytes?: number | undefined;
}

/**
 * Runs the job's handler and maps how it ended to the job's last change: its output if that
 * matches the contract, otherwise TOOL_FAILED with a message fit for the caller. Nothing if the
 * run was aborted: whoever aborted it (a cancel, a shutdown) writes the job's end.
 */
export async function runHandler(
  record: JobRecord,
  definition: JobDefinition,
  run: HandlerRun,
): Promise<JobPatch | undefined> {
  const { signal, logger } = run;
  const log = { jobId: record.id, tool: record.tool };
  let output: unknown;
  try {
    output = await definition.handler(record.args, {
      jobId: record.id,
      clientId: record.clientId,
      signal,
      attempt: record.attempts,
      progress: (progress) => {
        const checked = checkProgress(progress);
        if (!signal.aborted) run.progress(checked);
      },
    });
  } catch (error) {
    if (run.settled) await run.settled();
    if (signal.aborted) return undefined;
    logger.error({ ...log, err: error }, 'job handler failed');
    return toolFailed(safeToolMessage(error, 'the job failed'));
  }
  if (run.settled) await run.settled();
  if (signal.aborted) return undefined;
  const checked = definition.contract.output.safeParse(output);
  if (!checked.success) {
    logger.error(
      { ...log, issues: checked.error.issues },
      'job output does not match its contract',
    );
    return toolFailed('the job produced an invalid output');
  }
  const max = run.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const size = outputSize(checked.data);
  if (size === undefined) {
    logger.error(log, 'job output is not JSON');
    return toolFailed('the job produced an invalid output');
  }
  if (size > max) {
    // Neither stored nor sent: only its size is told.
    logger.error({ ...log, bytes: size, max }, 'job output too large');
    return toolFailed(`the job output exceeded ${max} bytes`);
  }
  return { status: 'done', output: checked.data };
}

/** The output's size as stored and sent (UTF-8 JSON); undefined if it is not JSON at all. */
function outputSize(output: unknown): number | undefined {
  try {
    const text = JSON.stringify(output);
    return text === undefined ? undefined : Buffer.byteLength(text, 'utf8');
  } catch {
    // A cycle or a BigInt: it could be neither stored nor signed.
    return undefined;
  }
}

/** The handlers running in this process, until they return. */
export class RunningHandlers {
  private readonly runs = new Map<string, { controller: AbortController; done: Promise<void> }>();

  get size(): number {
    return this.runs.size;
  }

  has(jobId: string): boolean {
    return this.runs.has(jobId);
  }

  /** Runs `run` for `jobId` with a signal of its own, tracked until it settles. */
  start(jobId: string, run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const controller = new AbortController();
    const done = run(controller.signal).finally(() => this.runs.delete(jobId));
    this.runs.set(jobId, { controller, done });
    return done;
  }

  /** Aborts the handler of `jobId`, if it runs here; whatever it returns afterwards is ignored. */
  abort(jobId: string, reason: unknown): void {
    this.runs.get(jobId)?.controller.abort(reason);
  }

  /**
   * Shutdown: lets the running handlers finish within `graceMs`, then ends each one still
   * running with `interrupt` (which writes INTERRUPTED) and aborts it with `reason`.
   */
  async stop(
    graceMs: number | undefined,
    interrupt: (jobId: string) => unknown,
    reason: unknown,
  ): Promise<void> {
    if (this.runs.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.runs.values()].map((run) => run.done)),
        new Promise((resolve) => {
          timer = setTimeout(resolve, graceMs ?? DEFAULT_GRACE_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const [jobId, run] of [...this.runs]) {
      await interrupt(jobId);
      run.controller.abort(reason);
    }
  }
}

export interface JobChangesOptions {
  /** How many changes are held at most; past that, `next` reports them missed instead. */
  limit?: number;
  /** Reports a miss when nothing came for this long (changes that travel can be lost). */
  recheckMs?: number;
}

/**
 * What a watcher hears of one job: the records emitted on `emitter` under the job's id, in
 * order, or (`undefined`) word that one was lost. `next()` waits for some, for a recheck, or for
 * `signal`, then gives them, with `missed` set when the watcher must read the job's log to fill
 * a gap. Stops listening when `signal` aborts. (`events.on` does the same at several times the
 * cost, and builds an AbortError with its stack for every watch that ends by the signal.)
 */
export class JobChanges {
  private records: JobRecord[] = [];
  private missed = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly emitter: EventEmitter,
    private readonly jobId: string,
    private readonly signal: AbortSignal,
    private readonly opts: JobChangesOptions = {},
  ) {
    emitter.on(jobId, this.onChange);
    signal.addEventListener('abort', this.close);
    if (signal.aborted) this.close();
  }

  private readonly onChange = (record: JobRecord | undefined): void => {
    if (record === undefined || this.records.length >= (this.opts.limit ?? Infinity)) {
      this.missed = true;
    } else {
      this.records.push(record);
    }
    this.wake?.();
  };

  async next(): Promise<{ records: JobRecord[]; missed: boolean }> {
    if (this.records.length === 0 && !this.missed && !this.signal.aborted) {
      const { recheckMs } = this.opts;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        if (recheckMs !== undefined) {
          timer = setTimeout(() => {
            this.missed = true;
            resolve();
          }, recheckMs);
        }
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    const next = { records: this.records, missed: this.missed };
    this.records = [];
    this.missed = false;
    return next;
  }

  readonly close = (): void => {
    this.emitter.off(this.jobId, this.onChange);
    this.signal.removeEventListener('abort', this.close);
    this.wake?.();
  };
}

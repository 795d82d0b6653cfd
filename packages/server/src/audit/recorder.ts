import { accessSync, constants } from 'node:fs';
import { canonicalJson } from '@signet/protocol';
import type { Logger } from 'pino';
import type { VerifiedCall } from '../envelope.ts';
import type { JobRecord } from '../stores/types.ts';
import { type AuditOutcome, argsDigest } from './chain.ts';
import { AuditLog, type AuditSigningKey } from './writer.ts';

// What a server or worker records in its audit log (issue 20): each call that passed
// authentication, with its outcome, and each status a job enters. A failed append is logged,
// never turned into a failed call: the call has already run by the time its outcome is known.

/** Where, and how, a server or worker keeps its audit log. */
export interface SignetAuditOptions {
  /** The folder of the log's files (`<chain-id>.<n>.jsonl`); created if need be. */
  folder: string;
  /** A file is rotated before it would pass this size (default 64 MiB). */
  maxBytes?: number;
  /** How often a checkpoint is written (and signed), if anything was appended since (10 s). */
  checkpointEveryMs?: number;
}

export const DEFAULT_CHECKPOINT_MS = 10_000;

export class AuditRecorder {
  private failing = false;

  private constructor(
    private readonly log: AuditLog,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens a new chain in `options.folder`; `serverKey` signs its checkpoints (asked at each one,
   * so a reloaded keyring's key is used). Throws, with the reason, if the folder is not writable.
   */
  static open(
    options: SignetAuditOptions,
    serverKey: () => AuditSigningKey | undefined,
    logger: Logger,
  ): AuditRecorder {
    let log: AuditLog | undefined;
    try {
      log = AuditLog.open({
        folder: options.folder,
        serverKey,
        onError: (error) => logger.error({ err: error }, 'could not write the audit log'),
        checkpointEveryMs: options.checkpointEveryMs ?? DEFAULT_CHECKPOINT_MS,
        ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}),
      });
      // (The log makes the folder; its first file waits for the first entry, so check now.)
      accessSync(options.folder, constants.W_OK);
    } catch (error) {
      log?.close();
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new Error(`the audit log cannot be written in ${options.folder} (${code})`);
    }
    return new AuditRecorder(log, logger);
  }

  get chainId(): string {
    return this.log.chainId;
  }

  /** A call that passed authentication; an Ed25519 call with the envelope its client signed. */
  call(call: VerifiedCall, outcome: AuditOutcome): void {
    const { envelope } = call;
    this.guard(() =>
      this.log.append({
        type: 'call',
        client_id: envelope.client_id,
        kid: call.key.kid,
        tool: envelope.tool,
        request_id: envelope.request_id,
        nonce: envelope.nonce,
        outcome,
        args_sha256: argsDigest(envelope.args),
        ...(call.key.alg === 'ed25519' ? { envelope: canonicalJson(envelope) } : {}),
      }),
    );
  }

  /** A job as it entered its status. */
  job(record: JobRecord): void {
    this.guard(() =>
      this.log.append({
        type: 'job',
        job_id: record.id,
        client_id: record.clientId,
        tool: record.tool,
        status: record.status,
        job_seq: record.seq,
      }),
    );
  }

  /** A last checkpoint, and the file closed. */
  close(): void {
    this.guard(() => this.log.close());
  }

  private guard(write: () => void): void {
    try {
      write();
      this.failing = false;
    } catch (error) {
      // (Once per run of failures: a full disk would otherwise log every call.)
      if (!this.failing) this.logger.error({ err: error }, 'could not write the audit log');
      this.failing = true;
    }
  }
}

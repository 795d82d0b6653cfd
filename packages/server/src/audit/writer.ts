import type { KeyObject } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AppendPayload,
  genesisOf,
  lineOf,
  makeCheckpoint,
  payloadLine,
  sha256Hex,
} from './chain.ts';
import { auditFileName } from './files.ts';

// Appends a chain's entries to its files. Each entry's line and its place in the chain are fixed
// when it is appended, whatever the callers' concurrency; the lines of one event-loop turn go to
// the file together, in one write, as the turn ends (one write per call cost a signed call ~13%
// of the server's CPU). So a crash of the process loses at most the entries of the turn it lands
// in (and may tear that write's last line, which the verifier reports and ignores); `flush`,
// `checkpoint` and `close` write at once.

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** The server key a checkpoint is signed with. */
export interface AuditSigningKey {
  kid: string;
  privateKey: KeyObject;
}

export interface AuditLogOptions {
  folder: string;
  /**
   * Signs checkpoints: a key, or a function asked at each checkpoint (a keyring may be reloaded).
   * Without one, checkpoints are unsigned (the verifier says so).
   */
  serverKey?: AuditSigningKey | (() => AuditSigningKey | undefined);
  /** A file is rotated before a line would take it past this size (a file holds ≥ 1 line). */
  maxBytes?: number;
  /** A checkpoint this often, if anything was appended since the last one; none if unset. */
  checkpointEveryMs?: number;
  /** The clock (tests). */
  now?: () => number;
  /** Told of a write that failed at the end of a turn (its lines are lost; the chain then breaks there). */
  onError?: (error: unknown) => void;
}

export class AuditLog {
  /** A random id per log: a restart starts a new chain, never re-opens an old one. */
  readonly chainId = randomUUID();
  private readonly maxBytes: number;
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout | undefined;
  /** The open file; none until the first line (a server that is never called writes no file). */
  private fd: number | undefined;
  private fileNumber = 1;
  private fileBytes = 0;
  private seq = 0;
  private prev: string;
  /** The seq of the last checkpoint, so an idle log writes no more of them. */
  private lastCheckpoint = -1;
  private closed = false;
  /** Lines appended since the last write to the file, and whether a write is scheduled. */
  private pending: string[] = [];
  private flushScheduled = false;

  private constructor(private readonly options: AuditLogOptions) {
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.now = options.now ?? Date.now;
    this.prev = genesisOf(this.chainId);
    mkdirSync(options.folder, { recursive: true, mode: 0o700 });
    if (options.checkpointEveryMs !== undefined) {
      this.timer = setInterval(() => this.checkpoint(), options.checkpointEveryMs);
      this.timer.unref();
    }
  }

  static open(options: AuditLogOptions): AuditLog {
    return new AuditLog(options);
  }

  /** The number of lines written so far (the next line's seq). */
  get length(): number {
    return this.seq;
  }

  /** Appends one call or job entry. */
  append(payload: AppendPayload): void {
    this.write(payloadLine(payload, { seq: this.seq, at: this.now(), prev: this.prev }));
  }

  /** Writes a checkpoint, unless nothing was written since the last one. */
  checkpoint(): void {
    if (this.closed || this.lastCheckpoint === this.seq - 1) return;
    if (this.seq === 0) return;
    this.lastCheckpoint = this.seq;
    const { serverKey } = this.options;
    const key = typeof serverKey === 'function' ? serverKey() : serverKey;
    this.write(lineOf(makeCheckpoint({ seq: this.seq, at: this.now(), prev: this.prev }, key)));
  }

  /** A last checkpoint, then the file is closed; appends after this throw. */
  close(): void {
    if (this.closed) return;
    this.checkpoint();
    if (this.timer) clearInterval(this.timer);
    this.closed = true;
    try {
      this.flush();
    } finally {
      if (this.fd !== undefined) closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /** Writes the lines appended since the last write, in one write. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.fd === undefined) return;
    const bytes = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    let done = 0;
    while (done < bytes.length) done += writeSync(this.fd, bytes, done);
  }

  /** Appends `text`, the next line without its newline, to the chain. */
  private write(text: string): void {
    if (this.closed) throw new Error('the audit log is closed');
    const line = `${text}\n`;
    const size = Buffer.byteLength(line, 'utf8');
    if (this.fd === undefined) {
      this.fd = this.openFile();
    } else if (this.fileBytes > 0 && this.fileBytes + size > this.maxBytes) {
      this.flush();
      closeSync(this.fd);
      this.fileNumber++;
      this.fd = this.openFile();
    }
    this.pending.push(line);
    this.fileBytes += size;
    this.prev = sha256Hex(text);
    this.seq++;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flushAtTurnEnd());
    }
  }

  private flushAtTurnEnd(): void {
    try {
      this.flush();
    } catch (error) {
      this.pending = [];
      this.options.onError?.(error);
    }
  }

  /** The next file: created, never re-opened ('wx'), owner-only. */
  private openFile(): number {
    const path = join(this.options.folder, auditFileName(this.chainId, this.fileNumber));
    const fd = openSync(path, 'wx', 0o600);
    this.fileBytes = 0;
    return fd;
  }
}

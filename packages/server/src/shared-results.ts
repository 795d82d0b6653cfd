import { CanonicalResult, type Reply } from '@signet/protocol';

// The canonical `result` of each job update sent on watch streams, made once and shared by every
// stream of that job (issue 21, V2): a job's state at a given `seq` never changes, so the streams
// of one job sign and send the same bytes, each around its own envelope members.

/** Results smaller than this are cheap to canonicalize again: not worth keeping. */
const MIN_SHARED_BYTES = 4 * 1024;
/** What the cache may hold at once, and for how long an entry is used. */
const MAX_ENTRIES = 64;
const MAX_BYTES = 32 * 1024 * 1024;
const TTL_MS = 60_000;

interface Entry {
  result: CanonicalResult;
  status: string;
  at: number;
}

export class SharedResults {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  /**
   * The canonical form of `reply.result`, for the update `seq` of `jobId` (a job of `clientId`'s,
   * as the job engine answered it): one copy while it is in use.
   */
  of(clientId: string, jobId: string, seq: number, reply: Reply, now: number): CanonicalResult {
    const key = `${clientId}\u0000${jobId}\u0000${seq}`;
    const cached = this.entries.get(key);
    // (The status too: a mismatch would be a bug elsewhere, and costs only a fresh copy.)
    if (cached && cached.status === reply.status && now - cached.at < TTL_MS) return cached.result;
    const result = CanonicalResult.of(reply.result);
    if (result.bytes.length >= MIN_SHARED_BYTES && result.bytes.length <= MAX_BYTES / 4) {
      this.drop(key);
      this.entries.set(key, { result, status: reply.status, at: now });
      this.bytes += result.bytes.length;
      this.evict(now);
    }
    return result;
  }

  /** Drops the oldest entries (a Map iterates in insertion order) past the bounds or the TTL. */
  private evict(now: number): void {
    for (const [key, entry] of this.entries) {
      const over = this.entries.size > MAX_ENTRIES || this.bytes > MAX_BYTES;
      if (!over && now - entry.at < TTL_MS) return;
      this.drop(key);
    }
  }

  private drop(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.bytes -= entry.result.bytes.length;
  }
}

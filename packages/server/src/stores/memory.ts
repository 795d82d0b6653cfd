import type { JobStatus } from '@signet/protocol';
import type { Backend, BackendContext, RunningBackend } from '../backend.ts';
import { openEmbedded } from './embedded.ts';
import { deltaOf, eventOf, type JobDelta } from './job-delta.ts';
import { NonceIndex, nonceKey } from './nonce-index.ts';
import { deepFreeze, recordCopy } from './shared-values.ts';
import type { JobEvent, JobPatch, JobRecord, LocalStore } from './types.ts';

/** Nothing survives a restart: for tests and throwaway servers (`SIGNET_STORE=memory:`). */
export class MemoryStore implements LocalStore, Backend {
  readonly description = 'memory';
  private readonly nonces = new NonceIndex();
  private readonly jobs = new Map<string, JobRecord>();
  private readonly byRequest = new Map<string, string>();
  /** Each job's changes as deltas: its args and output are kept once, in `jobs`. */
  private readonly events = new Map<string, JobDelta[]>();

  async open(ctx: BackendContext): Promise<RunningBackend> {
    return openEmbedded(this, ctx);
  }

  claim(clientId: string, nonce: string, expiresAtMs: number): boolean {
    return this.nonces.claim(nonceKey(clientId, nonce), expiresAtMs);
  }

  pruneNonces(now: number): number {
    return this.nonces.prune(now);
  }

  nonceCount(): number {
    return this.nonces.size;
  }

  createOrGet(record: JobRecord): { record: JobRecord; created: boolean } {
    const requestKey = `${record.clientId}\u0000${record.requestId}`;
    const existing = this.byRequest.get(requestKey);
    if (existing !== undefined) {
      const job = this.jobs.get(existing);
      if (job) return { record: recordCopy(job), created: false };
    }
    const stored = deepFreeze(structuredClone(record));
    this.jobs.set(record.id, { ...stored, progress: structuredClone(stored.progress) });
    this.byRequest.set(requestKey, record.id);
    this.events.set(record.id, [structuredClone(deltaOf(record))]);
    return { record: recordCopy(stored), created: true };
  }

  get(id: string): JobRecord | undefined {
    const job = this.jobs.get(id);
    return job && recordCopy(job);
  }

  findByRequest(clientId: string, requestId: string): JobRecord | undefined {
    const id = this.byRequest.get(`${clientId}\u0000${requestId}`);
    return id === undefined ? undefined : this.get(id);
  }

  update(id: string, patch: JobPatch, now: number): JobRecord | undefined {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    const { output, ...rest } = patch;
    Object.assign(job, structuredClone(rest), { seq: job.seq + 1, updatedAt: now });
    if (output !== undefined) job.output = output && deepFreeze(structuredClone(output));
    this.events.get(id)?.push(structuredClone(deltaOf(job)));
    return recordCopy(job);
  }

  eventsAfter(id: string, afterSeq: number): JobEvent[] {
    const job = this.jobs.get(id);
    if (!job) return [];
    const copy = recordCopy(job);
    return (this.events.get(id) ?? [])
      .filter((delta) => delta.seq > afterSeq)
      .map((delta) => eventOf(copy, structuredClone(delta)));
  }

  listByStatus(statuses: readonly JobStatus[]): JobRecord[] {
    return [...this.jobs.values()]
      .filter((job) => statuses.includes(job.status))
      .sort((a, b) => a.createdAt - b.createdAt)
      .map(recordCopy);
  }

  deleteFinishedBefore(cutoff: number): number {
    let deleted = 0;
    for (const [id, job] of this.jobs) {
      if (job.finishedAt !== null && job.finishedAt < cutoff) {
        this.jobs.delete(id);
        this.events.delete(id);
        this.byRequest.delete(`${job.clientId}\u0000${job.requestId}`);
        deleted++;
      }
    }
    return deleted;
  }

  close(): void {}
}

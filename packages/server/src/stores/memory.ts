import type { JobStatus } from '@signet/protocol';
import type { Backend, BackendContext, RunningBackend } from '../backend.ts';
import { openEmbedded } from './embedded.ts';
import { NonceIndex, nonceKey } from './nonce-index.ts';
import type { JobEvent, JobPatch, JobRecord, LocalStore } from './types.ts';

/** Nothing survives a restart: for tests and throwaway servers (`SIGNET_STORE=memory:`). */
export class MemoryStore implements LocalStore, Backend {
  readonly description = 'memory';
  private readonly nonces = new NonceIndex();
  private readonly jobs = new Map<string, JobRecord>();
  private readonly byRequest = new Map<string, string>();
  private readonly events = new Map<string, JobEvent[]>();

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
      if (job) return { record: structuredClone(job), created: false };
    }
    this.jobs.set(record.id, structuredClone(record));
    this.byRequest.set(requestKey, record.id);
    this.events.set(record.id, [{ seq: record.seq, record: structuredClone(record) }]);
    return { record: structuredClone(record), created: true };
  }

  get(id: string): JobRecord | undefined {
    const job = this.jobs.get(id);
    return job && structuredClone(job);
  }

  findByRequest(clientId: string, requestId: string): JobRecord | undefined {
    const id = this.byRequest.get(`${clientId}\u0000${requestId}`);
    return id === undefined ? undefined : this.get(id);
  }

  update(id: string, patch: JobPatch, now: number): JobRecord | undefined {
    const job = this.jobs.get(id);
    if (!job) return undefined;
    Object.assign(job, structuredClone(patch), { seq: job.seq + 1, updatedAt: now });
    this.events.get(id)?.push({ seq: job.seq, record: structuredClone(job) });
    return structuredClone(job);
  }

  eventsAfter(id: string, afterSeq: number): JobEvent[] {
    return (this.events.get(id) ?? [])
      .filter((event) => event.seq > afterSeq)
      .map((event) => structuredClone(event));
  }

  listByStatus(statuses: readonly JobStatus[]): JobRecord[] {
    return [...this.jobs.values()]
      .filter((job) => statuses.includes(job.status))
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((job) => structuredClone(job));
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

import type { Logger } from 'pino';
import { LocalJobEngine } from './jobs/local-engine.ts';
import type { JobDefinition, JobEngine } from './jobs/types.ts';
import type { LocalStore, NonceStore } from './stores/types.ts';

export interface BackendContext {
  definitions: ReadonlyMap<string, JobDefinition>;
  logger: Logger;
  concurrency: number | undefined;
  retentionMs: number | undefined;
  now: () => number;
}

export interface RunningBackend {
  description: string;
  nonces: NonceStore;
  jobs: JobEngine;
  /** Releases connections; the job engine is closed first, by the server. */
  close(): Promise<void>;
}

/** State kept outside the process (e.g. Redis): opened once the server knows its job handlers. */
export interface Backend {
  open(ctx: BackendContext): Promise<RunningBackend>;
}

const PRUNE_INTERVAL_MS = 30_000;

/** Opens the store a server was given: the embedded store (in this process) or a shared backend. */
export async function openBackend(
  store: LocalStore | Backend,
  ctx: BackendContext,
): Promise<RunningBackend> {
  if (!('claim' in store)) return store.open(ctx);
  const embedded = store;
  const pruner = setInterval(() => {
    try {
      embedded.pruneNonces(ctx.now());
    } catch (error) {
      ctx.logger.warn({ err: error }, 'could not prune nonces');
    }
  }, PRUNE_INTERVAL_MS);
  pruner.unref();
  return {
    description: embedded.description,
    nonces: embedded.claimSoon ? { claim: embedded.claimSoon.bind(embedded) } : embedded,
    jobs: new LocalJobEngine({
      store: embedded,
      definitions: ctx.definitions,
      logger: ctx.logger,
      concurrency: ctx.concurrency,
      retentionMs: ctx.retentionMs,
      now: ctx.now,
    }),
    close: async () => {
      clearInterval(pruner);
      embedded.close();
    },
  };
}

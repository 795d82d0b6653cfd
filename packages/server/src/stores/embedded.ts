import type { BackendContext, RunningBackend } from '../backend.ts';
import { LocalJobEngine } from '../jobs/local-engine.ts';
import type { LocalStore } from './types.ts';

const PRUNE_INTERVAL_MS = 30_000;

/**
 * The embedded backend over an open store: jobs run in this process, nonces are claimed with the
 * store's group commit where it has one, and expired nonces are pruned now and then. Takes the
 * store over: closing the backend (or failing to open it) closes the store.
 */
export function openEmbedded(store: LocalStore, ctx: BackendContext): RunningBackend {
  let jobs: LocalJobEngine;
  try {
    jobs = new LocalJobEngine({
      store,
      definitions: ctx.definitions,
      logger: ctx.logger,
      concurrency: ctx.concurrency,
      retentionMs: ctx.retentionMs,
      now: ctx.now,
    });
  } catch (error) {
    store.close();
    throw error;
  }
  const pruner = setInterval(() => {
    try {
      store.pruneNonces(ctx.now());
    } catch (error) {
      ctx.logger.warn({ err: error }, 'could not prune nonces');
    }
  }, PRUNE_INTERVAL_MS);
  pruner.unref();
  return {
    description: store.description,
    nonces: store.claimSoon ? { claim: store.claimSoon.bind(store) } : store,
    jobs,
    close: async () => {
      clearInterval(pruner);
      store.close();
    },
  };
}

import type { BackendContext, RunningBackend } from '../backend.ts';
import { LocalJobEngine } from '../jobs/local-engine.ts';
import type { JobStore, LocalStore, NonceStore } from './types.ts';

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
      store: ctx.onJobChange ? observedJobs(store, ctx.onJobChange) : store,
      definitions: ctx.definitions,
      logger: ctx.logger,
      concurrency: ctx.concurrency,
      retentionMs: ctx.retentionMs,
      maxOutputBytes: ctx.maxOutputBytes,
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
    nonces: noncesOf(store),
    jobs,
    close: async () => {
      clearInterval(pruner);
      store.close();
    },
  };
}

/** The store's nonces as the server claims them: with its group commit, where it has one. */
function noncesOf(store: LocalStore): NonceStore {
  const count = store.nonceCount?.bind(store);
  if (store.claimSoon) {
    return { claim: store.claimSoon.bind(store), ...(count ? { size: count } : {}) };
  }
  return count ? { claim: store.claim.bind(store), size: count } : store;
}

/** The job store, telling `onJobChange` of every status a job enters (created: queued). */
function observedJobs(
  store: JobStore,
  onJobChange: NonNullable<BackendContext['onJobChange']>,
): JobStore {
  return {
    createOrGet: (record) => {
      const made = store.createOrGet(record);
      if (made.created) onJobChange(made.record);
      return made;
    },
    update: (id, patch, now) => {
      const record = store.update(id, patch, now);
      if (record && patch.status !== undefined) onJobChange(record);
      return record;
    },
    get: (id) => store.get(id),
    findByRequest: (clientId, requestId) => store.findByRequest(clientId, requestId),
    eventsAfter: (id, afterSeq) => store.eventsAfter(id, afterSeq),
    listByStatus: (statuses) => store.listByStatus(statuses),
    deleteFinishedBefore: (cutoff) => store.deleteFinishedBefore(cutoff),
  };
}

import type { ContractSet } from '@signet/contracts';
import type { Logger } from 'pino';
import { AuditRecorder, type SignetAuditOptions } from '../audit/recorder.ts';
import type { AuditSigningKey } from '../audit/writer.ts';
import {
  type Backend,
  type BackendContext,
  jobChangeListener,
  type RunningBackend,
} from '../backend.ts';
import { type Handlers, jobDefinitions } from '../handlers.ts';
import type { JobDefinition } from '../jobs/types.ts';
import { defaultLogger } from '../logger.ts';
import { connected, failFastRedis, redactUrl } from './connection.ts';
import { BullJobEngine } from './job-engine.ts';
import { RedisNonceStore } from './nonce-store.ts';

export interface RedisBackendOptions {
  /** `redis://host:port[/db]` */
  url: string;
  /** Run job handlers in this process too (`SIGNET_ROLE=all`), or leave them to workers. */
  runHandlers: boolean;
  /** How soon a dead worker's job is noticed, in ms (default 10 000). */
  lockMs?: number;
  /**
   * What this deployment's keys (and its queue's name) start with: API servers and workers of
   * one deployment share it; other deployments on the same Redis use their own. Default `signet`.
   */
  namespace?: string;
}

/** The namespace of a deployment that names none. */
export const DEFAULT_NAMESPACE = 'signet';

/** Where a deployment's state lives: its own keys, and its BullMQ queue (and that queue's keys). */
export function namespaceKeys(namespace: string) {
  const queue = `${namespace}-jobs`;
  return { prefix: namespace, queue, patterns: [`${namespace}:*`, `bull:${queue}:*`] };
}

async function open(
  opts: RedisBackendOptions,
  definitions: ReadonlyMap<string, JobDefinition>,
  ctx: Omit<BackendContext, 'definitions'>,
): Promise<RunningBackend & { jobs: BullJobEngine }> {
  const keys = namespaceKeys(opts.namespace ?? DEFAULT_NAMESPACE);
  const redis = failFastRedis(opts.url);
  redis.on('error', () => {}); // reported per call as STORE_UNAVAILABLE
  try {
    await connected(redis, opts.url);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  const jobs = new BullJobEngine({
    url: opts.url,
    redis,
    definitions,
    logger: ctx.logger,
    runHandlers: opts.runHandlers,
    concurrency: ctx.concurrency,
    retentionMs: ctx.retentionMs,
    maxOutputBytes: ctx.maxOutputBytes,
    lockMs: opts.lockMs,
    now: ctx.now,
    prefix: keys.prefix,
    queueName: keys.queue,
    ...(ctx.onJobChange ? { onJobChange: ctx.onJobChange } : {}),
  });
  await jobs.ready();
  return {
    description: `redis:${redactUrl(opts.url)}`,
    nonces: new RedisNonceStore(redis, keys.prefix, ctx.now),
    jobs,
    close: async () => {
      redis.disconnect();
    },
  };
}

/** Nonces in Redis, jobs on BullMQ: any number of API servers and workers share one Redis. */
export function redisBackend(opts: RedisBackendOptions): Backend {
  return { open: (ctx) => open(opts, ctx.definitions, ctx) };
}

/** `pnpm worker`: job handlers only, taking jobs from the shared queue. */
export async function startSignetWorker<C extends ContractSet>(opts: {
  contracts: C;
  handlers: Handlers<C>;
  url: string;
  /** Where the worker logs (pino); default: warnings and errors on stderr. */
  logger?: Logger;
  concurrency?: number;
  retentionMs?: number;
  /** The largest job output kept (see SignetOptions.maxOutputBytes). */
  maxOutputBytes?: number;
  lockMs?: number;
  /** As the API servers' `namespace` (see RedisBackendOptions). */
  namespace?: string;
  /**
   * The worker's own audit log of the job changes it makes (a chain of its own, beside the API
   * servers' in a shared folder or not), its checkpoints signed by `serverKey` if given.
   */
  audit?: SignetAuditOptions & { serverKey?: AuditSigningKey };
}): Promise<{ close(opts?: { graceMs?: number }): Promise<void> }> {
  const logger = opts.logger ?? defaultLogger();
  const audit = opts.audit && AuditRecorder.open(opts.audit, () => opts.audit?.serverKey, logger);
  let backend: RunningBackend;
  try {
    backend = await open(
      { url: opts.url, runHandlers: true, lockMs: opts.lockMs, namespace: opts.namespace },
      jobDefinitions(opts.contracts, opts.handlers),
      {
        logger,
        concurrency: opts.concurrency,
        retentionMs: opts.retentionMs,
        maxOutputBytes: opts.maxOutputBytes,
        now: Date.now,
        ...(audit ? { onJobChange: jobChangeListener(undefined, audit) } : {}),
      },
    );
  } catch (error) {
    audit?.close();
    throw error;
  }
  return {
    close: async (closeOpts) => {
      try {
        await backend.jobs.close(closeOpts);
        await backend.close();
      } finally {
        audit?.close();
      }
    },
  };
}

import type { ContractSet } from '@signet/contracts';
import type { Logger } from 'pino';
import { AuditRecorder, type SignetAuditOptions } from './audit/recorder.ts';
import { type Backend, jobChangeListener, type RunningBackend } from './backend.ts';
import { type Handlers, jobDefinitions } from './handlers.ts';
import type { Keyring } from './keyring.ts';
import { type ClientLimits, clientLimits, WatchSlots } from './limits.ts';
import { defaultLogger } from './logger.ts';
import { type SignetMetrics, type SignetMetricsOption, signetMetrics } from './metrics.ts';
import { RateLimiter } from './rate-limit.ts';
import { buildSignetRouter, type SignetMiddleware, type SignetRouter } from './router.ts';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_WINDOW_MS, type SignetServices } from './services.ts';
import type { SignetContext } from './trpc.ts';

export interface SignetOptions<C extends ContractSet> {
  contracts: C;
  handlers: Handlers<C>;
  /**
   * Who may call: a `Keyring` (e.g. `Keyring.parse({...})`), or a function returning the one in
   * force, called on every request so that a reload takes effect at once (see `watchKeyring`).
   */
  keyring: Keyring | (() => Keyring);
  /** The embedded store (nonces and jobs in this process), or a shared backend such as Redis. */
  store: Backend;
  /** Where the server logs (pino); default: warnings and errors on stderr. */
  logger?: Logger;
  windowMs?: number;
  maxBodyBytes?: number;
  /** Job handlers running at once in this process (embedded store). */
  concurrency?: number;
  /** How long finished jobs are kept. */
  retentionMs?: number;
  /**
   * The largest output a job may end with, in bytes of its UTF-8 JSON text (default 1 MiB, as
   * `maxBodyBytes`): a handler returning more ends its job as an error (TOOL_FAILED), the output
   * neither stored nor sent.
   */
  maxOutputBytes?: number;
  /** Calls per second each client may make (sustained), and its burst; absent = unlimited. */
  rateLimit?: { perSecond: number; burst: number };
  /**
   * What each client may hold open at once: watch_job streams in this process (default 100) and
   * unfinished jobs across the deployment (default 1000). Past a cap, a call is 429 RATE_LIMITED
   * and its nonce is not spent.
   */
  clientLimits?: Partial<ClientLimits>;
  /** tRPC middleware for every Signet procedure (see `SignetRouterOptions`). */
  middleware?: readonly SignetMiddleware[];
  /**
   * Prometheus metrics (prom-client): `true` for a registry of this server's own, or
   * `{ registry }` to add them to yours. Off by default. See `Signet.metrics`.
   */
  metrics?: SignetMetricsOption;
  /**
   * The audit log (see README): every authenticated call and every job change, hash-chained in
   * JSONL files in `audit.folder`, with checkpoints signed by the keyring's server key. Off when
   * absent.
   */
  audit?: SignetAuditOptions;
  now?: () => number;
}

/** A Signet router with what it runs on, ready to be served by any tRPC adapter. */
export interface Signet<C extends ContractSet> {
  router: SignetRouter<C>;
  services: SignetServices;
  /**
   * The metrics, when `metrics` is on: `registry.metrics()` is the text a scrape answers, or
   * `serve(req, res)` answers one (Signet's HTTP fronts do, at `GET /metrics`).
   */
  metrics: SignetMetrics | undefined;
  /** The context every request of this router needs: pass it as an adapter's `createContext`. */
  createContext(): SignetContext;
  /** Stops taking jobs, lets running ones finish within `graceMs`, interrupts the rest. */
  stopJobs(opts?: { graceMs?: number }): Promise<void>;
  /** `stopJobs`, then closes the store. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

/**
 * Opens the store and builds the router of a contract set, with no HTTP server: what
 * `startSignetServer` serves, and what an app mounts in its own tRPC adapter.
 */
export function createSignet<C extends ContractSet>(opts: SignetOptions<C>): Promise<Signet<C>> {
  return openSignet(opts, { measureInRouter: true });
}

/**
 * `createSignet`; with metrics on, calls are timed and counted by a middleware of the router
 * (`measureInRouter`, for any adapter), or left to the HTTP front (Signet's own: cheaper).
 */
export async function openSignet<C extends ContractSet>(
  opts: SignetOptions<C>,
  internal: { measureInRouter: boolean },
): Promise<Signet<C>> {
  const now = opts.now ?? Date.now;
  const logger = opts.logger ?? defaultLogger();
  const keyring = opts.keyring;
  const currentKeyring = typeof keyring === 'function' ? keyring : () => keyring;
  const limits = clientLimits(opts.clientLimits);
  const metrics = signetMetrics(
    opts.metrics,
    Object.values(opts.contracts).map((contract) => contract.name),
  );
  const router = buildSignetRouter(
    opts.contracts,
    opts.handlers,
    { ...(opts.middleware ? { middleware: opts.middleware } : {}) },
    { measured: metrics !== undefined && internal.measureInRouter },
  );
  // (Opened before the store: a store's recovery at open, e.g. of a crashed run's jobs, is
  // recorded too.)
  const audit =
    opts.audit && AuditRecorder.open(opts.audit, () => currentKeyring().signingKey, logger);
  const onJobChange = jobChangeListener(metrics, audit);
  let backend: RunningBackend;
  try {
    backend = await opts.store.open({
      definitions: jobDefinitions(opts.contracts, opts.handlers),
      logger,
      concurrency: opts.concurrency,
      retentionMs: opts.retentionMs,
      maxOutputBytes: opts.maxOutputBytes,
      now,
      ...(onJobChange ? { onJobChange } : {}),
    });
  } catch (error) {
    audit?.close();
    throw error;
  }
  metrics?.watchNonces(backend.nonces);
  const services: SignetServices = {
    keyring: currentKeyring,
    nonces: backend.nonces,
    jobs: backend.jobs,
    logger,
    windowMs: opts.windowMs ?? DEFAULT_WINDOW_MS,
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    ...(opts.rateLimit
      ? { rateLimiter: new RateLimiter(opts.rateLimit.perSecond, opts.rateLimit.burst) }
      : {}),
    limits,
    watchSlots: new WatchSlots(limits.watchStreams),
    ...(metrics ? { metrics } : {}),
    ...(audit ? { audit } : {}),
    now,
  };
  const context: SignetContext = { services };
  let stopping: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  const stopJobs = (closeOpts?: { graceMs?: number }) => {
    stopping ??= backend.jobs.close(closeOpts);
    return stopping;
  };
  return {
    router,
    services,
    metrics,
    createContext: () => context,
    stopJobs,
    close: (closeOpts) => {
      closing ??= stopJobs(closeOpts)
        .then(() => backend.close())
        .finally(() => audit?.close());
      return closing;
    },
  };
}

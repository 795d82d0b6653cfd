import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContractSet } from '@signet/contracts';
import type { Logger } from 'pino';
import { createSignetRequestHandler } from './http.ts';
import { LocalJobEngine } from './jobs/local-engine.ts';
import type { JobEngine } from './jobs/types.ts';
import type { Keyring } from './keyring.ts';
import { RateLimiter } from './rate-limit.ts';
import { createSignetRouter, type Handlers, jobDefinitions, type SignetRouter } from './router.ts';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_WINDOW_MS, type SignetServices } from './services.ts';
import type { LocalStore, NonceStore } from './stores/types.ts';

export interface SignetServerOptions<C extends ContractSet> {
  contracts: C;
  handlers: Handlers<C>;
  /** The keyring in force; called on every request, so a reload takes effect at once. */
  keyring: () => Keyring;
  /** The embedded store (nonces and jobs), or separate ones for a distributed setup. */
  store: LocalStore | { nonces: NonceStore; jobs: JobEngine; close(): Promise<void> | void };
  logger: Logger;
  host?: string;
  port?: number;
  windowMs?: number;
  maxBodyBytes?: number;
  /** Job handlers running at once in this process (embedded store). */
  concurrency?: number;
  /** How long finished jobs are kept. */
  retentionMs?: number;
  /** Calls per second each client may make (sustained), and its burst; absent = unlimited. */
  rateLimit?: { perSecond: number; burst: number };
  now?: () => number;
}

export interface RunningSignetServer<C extends ContractSet> {
  url: string;
  port: number;
  router: SignetRouter<C>;
  services: SignetServices;
  http: Server;
  /** Stops taking calls, lets running jobs finish within `graceMs`, then closes the store. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

const PRUNE_INTERVAL_MS = 30_000;

export async function startSignetServer<C extends ContractSet>(
  opts: SignetServerOptions<C>,
): Promise<RunningSignetServer<C>> {
  const now = opts.now ?? Date.now;
  const embedded = 'claim' in opts.store ? opts.store : undefined;
  const nonces = embedded ?? (opts.store as { nonces: NonceStore }).nonces;
  const jobs: JobEngine = embedded
    ? new LocalJobEngine({
        store: embedded,
        definitions: jobDefinitions(opts.contracts, opts.handlers),
        logger: opts.logger,
        concurrency: opts.concurrency,
        retentionMs: opts.retentionMs,
        now,
      })
    : (opts.store as { jobs: JobEngine }).jobs;

  const services: SignetServices = {
    keyring: opts.keyring,
    nonces,
    jobs,
    logger: opts.logger,
    windowMs: opts.windowMs ?? DEFAULT_WINDOW_MS,
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    ...(opts.rateLimit
      ? { rateLimiter: new RateLimiter(opts.rateLimit.perSecond, opts.rateLimit.burst) }
      : {}),
    now,
  };
  const router = createSignetRouter(opts.contracts, opts.handlers);
  const http = createServer(createSignetRequestHandler({ router, services }));
  http.keepAliveTimeout = 5_000;

  const pruner = embedded
    ? setInterval(() => {
        try {
          embedded.pruneNonces(now());
        } catch (error) {
          opts.logger.warn({ err: error }, 'could not prune nonces');
        }
      }, PRUNE_INTERVAL_MS)
    : undefined;
  pruner?.unref();

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  const { port, address } = http.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    router,
    services,
    http,
    close: (closeOpts) => {
      closing ??= (async () => {
        clearInterval(pruner);
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeIdleConnections();
        await jobs.close(closeOpts);
        http.closeAllConnections();
        await stopped;
        await opts.store.close();
      })();
      return closing;
    },
  };
}

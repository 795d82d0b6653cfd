import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContractSet } from '@signet/contracts';
import type { Logger } from 'pino';
import { type Backend, openBackend } from './backend.ts';
import { createSignetRequestHandler } from './http.ts';
import type { Keyring } from './keyring.ts';
import { RateLimiter } from './rate-limit.ts';
import { createSignetRouter, type Handlers, jobDefinitions, type SignetRouter } from './router.ts';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_WINDOW_MS, type SignetServices } from './services.ts';
import type { LocalStore } from './stores/types.ts';

export interface SignetServerOptions<C extends ContractSet> {
  contracts: C;
  handlers: Handlers<C>;
  /** The keyring in force; called on every request, so a reload takes effect at once. */
  keyring: () => Keyring;
  /** The embedded store (nonces and jobs in this process), or a shared backend such as Redis. */
  store: LocalStore | Backend;
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

export async function startSignetServer<C extends ContractSet>(
  opts: SignetServerOptions<C>,
): Promise<RunningSignetServer<C>> {
  const now = opts.now ?? Date.now;
  const definitions = jobDefinitions(opts.contracts, opts.handlers);
  const backend = await openBackend(opts.store, {
    definitions,
    logger: opts.logger,
    concurrency: opts.concurrency,
    retentionMs: opts.retentionMs,
    now,
  });
  const { nonces, jobs } = backend;

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


  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await jobs.close({ graceMs: 0 });
    await backend.close();
    throw error;
  }
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
            const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeIdleConnections();
        await jobs.close(closeOpts);
        http.closeAllConnections();
        await stopped;
        await backend.close();
      })();
      return closing;
    },
  };
}

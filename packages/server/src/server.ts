import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContractSet } from '@signet/contracts';
import { createSignetRequestHandler } from './http.ts';
import { createLimitedServer, type HttpLimits, httpLimits } from './http-limits.ts';
import type { SignetRouter } from './router.ts';
import type { SignetServices } from './services.ts';
import { createSignet, type SignetOptions } from './signet.ts';
import { createTrpcRequestHandler } from './trpc-front.ts';

/** The HTTP fronts a Signet server can be served by (`SIGNET_HTTP`). */
export const HTTP_FRONTS = ['signet', 'trpc'] as const;
export type HttpFront = (typeof HTTP_FRONTS)[number];

export interface SignetServerOptions<C extends ContractSet> extends SignetOptions<C> {
  host?: string;
  port?: number;
  /**
   * `signet` (the default): Signet's fast HTTP front; `trpc`: the same router through tRPC's
   * standalone adapter, wrapped so that check 1 and Retry-After still hold (slower; the reference).
   */
  httpFront?: HttpFront;
  /** Timeouts and connection limits (`DEFAULT_HTTP_LIMITS` for what is left out). */
  httpLimits?: Partial<HttpLimits>;
}

export interface RunningSignetServer<C extends ContractSet> {
  url: string;
  port: number;
  router: SignetRouter<C>;
  services: SignetServices;
  http: Server;
  /** Which front answers on `http`. */
  httpFront: HttpFront;
  /** Stops taking calls, lets running jobs finish within `graceMs`, then closes the store. */
  close(opts?: { graceMs?: number }): Promise<void>;
}

/** A Signet server on `node:http`, with Signet's own HTTP front or tRPC's (`httpFront`). */
export async function startSignetServer<C extends ContractSet>(
  opts: SignetServerOptions<C>,
): Promise<RunningSignetServer<C>> {
  if (opts.httpFront !== undefined && !HTTP_FRONTS.includes(opts.httpFront)) {
    throw new Error(`httpFront must be one of ${HTTP_FRONTS.join(', ')}, not "${opts.httpFront}"`);
  }
  const httpFront = opts.httpFront ?? 'signet';
  const limits = httpLimits(opts.httpLimits);
  const signet = await createSignet(opts);
  const { router, services } = signet;
  const { ssePingMs } = limits;
  const http = createLimitedServer(
    limits,
    httpFront === 'trpc'
      ? createTrpcRequestHandler(signet, { ssePingMs })
      : createSignetRequestHandler({ router, services, ssePingMs }),
  );

  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await signet.close({ graceMs: 0 });
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
    httpFront,
    close: (closeOpts) => {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeIdleConnections();
        await signet.stopJobs(closeOpts);
        http.closeAllConnections();
        await stopped;
        await signet.close();
      })();
      return closing;
    },
  };
}

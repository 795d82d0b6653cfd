import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContractSet } from '@signet/contracts';
import type { Registry } from 'prom-client';
import { createSignetRequestHandler } from './http.ts';
import { createLimitedServer, type HttpLimits, httpLimits } from './http-limits.ts';
import type { SignetMetrics } from './metrics.ts';
import type { SignetRouter } from './router.ts';
import type { SignetServices } from './services.ts';
import { openSignet, type SignetOptions } from './signet.ts';
import { createTrpcRequestHandler } from './trpc-front.ts';

/** The HTTP fronts a Signet server can be served by (`SIGNET_HTTP`). */
export const HTTP_FRONTS = ['signet', 'trpc'] as const;
export type HttpFront = (typeof HTTP_FRONTS)[number];

/**
 * `metrics` of `startSignetServer`: as `createSignet`'s, and where `GET /metrics` is served: on
 * the API's port (the default), or with `listen`, on a listener of its own (host default
 * 127.0.0.1; port 0 picks a free one), and then not on the API's port.
 */
export type SignetServerMetricsOption =
  | boolean
  | { registry?: Registry; listen?: { port: number; host?: string } };

export interface SignetServerOptions<C extends ContractSet> extends SignetOptions<C> {
  metrics?: SignetServerMetricsOption;
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
  /** When metrics are on: their registry, and the URL a scrape reads them at. */
  metrics: { registry: Registry; url: string } | undefined;
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
  const metricsOption = opts.metrics;
  const metricsListen = typeof metricsOption === 'object' ? metricsOption.listen : undefined;
  // (Signet's own front times and counts calls itself; tRPC's needs the router's middleware.)
  const measureInRouter = httpFront === 'trpc';
  const signet = await openSignet(
    {
      ...opts,
      metrics:
        typeof metricsOption === 'object'
          ? metricsOption.registry
            ? { registry: metricsOption.registry }
            : true
          : metricsOption,
    },
    { measureInRouter },
  );
  const { router, services, metrics } = signet;
  const { ssePingMs } = limits;
  const serveMetrics = metrics !== undefined && metricsListen === undefined;
  const http = createLimitedServer(
    limits,
    httpFront === 'trpc'
      ? createTrpcRequestHandler(signet, { ssePingMs, serveMetrics })
      : createSignetRequestHandler({
          router,
          services,
          ssePingMs,
          serveMetrics,
          measureCalls: !measureInRouter,
        }),
  );
  const metricsHttp =
    metrics && metricsListen
      ? createServer((req, res) => serveScrape(metrics, req, res))
      : undefined;

  try {
    await listen(http, opts.port ?? 0, opts.host ?? '127.0.0.1');
    if (metricsHttp && metricsListen) {
      await listen(metricsHttp, metricsListen.port, metricsListen.host ?? '127.0.0.1');
    }
  } catch (error) {
    if (http.listening) http.close();
    await signet.close({ graceMs: 0 });
    throw error;
  }
  const { port, address } = http.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  const url = `http://${host}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    router,
    services,
    http,
    httpFront,
    metrics: metrics && {
      registry: metrics.registry,
      url: metricsHttp ? `${urlOf(metricsHttp)}/metrics` : `${url}/metrics`,
    },
    close: (closeOpts) => {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => http.close(() => resolve()));
        if (metricsHttp) {
          metricsHttp.close();
          metricsHttp.closeAllConnections();
        }
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

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function urlOf(server: Server): string {
  const { port, address } = server.address() as AddressInfo;
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** The metrics listener of its own: `/metrics`, and nothing else (a plain 404). */
function serveScrape(metrics: SignetMetrics, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  if ((queryAt === -1 ? url : url.slice(0, queryAt)) === '/metrics') {
    void metrics.serve(req, res);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
}

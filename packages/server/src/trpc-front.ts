import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AnyTRPCProcedure, AnyTRPCRouter } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { SignetError } from './errors.ts';
import {
  parseJson,
  queryInput,
  readBody,
  retryAfterOf,
  routeCall,
  sendFailure,
} from './http-checks.ts';
import { DEFAULT_HTTP_LIMITS } from './http-limits.ts';
import type { SignetServices } from './services.ts';
import { sendSseRefusal } from './sse.ts';
import type { SignetContext } from './trpc.ts';
import { guardWatchResponse, spliceSharedResults } from './watch-responses.ts';

/**
 * The same router served by tRPC's own standalone adapter (`SIGNET_HTTP=trpc`): the proof that
 * a Signet server is a tRPC server, and the reference the fast front (http.ts) is held to. It is
 * slower (BENCHMARKS.md).
 *
 * A thin layer around `createHTTPHandler`, for what tRPC's adapter does not do as DESIGN 1.4-1.5
 * ask: the HTTP layer the fast front shares (`routeCall`: health check, unknown tools, batching,
 * methods, media type), and the body read with check 1's limit and lingering close, handed over
 * as `req.body` (as Express's body parser would). tRPC does the rest: parsing the input, calling
 * the procedure, the result, the errors (through the router's error formatter) and watch_job's
 * SSE; `responseMeta` adds a 429's Retry-After.
 */
export function createTrpcRequestHandler(
  signet: {
    router: AnyTRPCRouter;
    services: SignetServices;
    /** The context of every call (see `createSignet`). */
    createContext(): SignetContext;
  },
  opts: {
    ssePingMs?: number /** Answer `GET /metrics` (when `services.metrics` is on). */;
    serveMetrics?: boolean;
  } = {},
): RequestListener {
  const { services } = signet;
  const { metrics } = services;
  const front = { metrics, serve: opts.serveMetrics ?? false };
  const ssePingMs = opts.ssePingMs ?? DEFAULT_HTTP_LIMITS.ssePingMs;
  const router = withSsePing(signet.router, ssePingMs);
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure>;
  /** The responses of the watch calls being handed to tRPC. */
  const watches = new WeakSet<ServerResponse>();
  const trpc = createHTTPHandler({
    router,
    basePath: '/trpc/',
    createContext: ({ res }) => {
      const ctx = signet.createContext();
      if (!watches.has(res)) return ctx;
      // A watch gets a context of its own, by which its response is known (watch-responses.ts),
      // and its response is closed should it stay undrained, as on Signet's own front.
      const watchCtx = { ...ctx };
      guardWatchResponse(watchCtx, res, ssePingMs);
      spliceSharedResults(watchCtx, res);
      return watchCtx;
    },
    allowBatching: false,
    // (The body comes read already; this is the same limit, should the adapter ever read it.)
    maxBodySize: services.maxBodyBytes,
    responseMeta: ({ errors }) => {
      const retryAfter = errors.map(retryAfterOf).find((value) => value !== undefined);
      return retryAfter === undefined
        ? {}
        : { headers: new Headers({ 'retry-after': retryAfter }) };
    },
    onError: ({ error, path }) => {
      // (Refusals are answers; a failure inside a procedure was logged where it happened.)
      if (!(error instanceof SignetError) && error.code === 'INTERNAL_SERVER_ERROR') {
        services.logger.error({ err: error.cause ?? error, path }, 'unexpected error');
      }
    },
  });

  return (req, res) => {
    const routed = routeCall(req, res, procedures, front);
    if (!routed) return;
    // A subscription's input is in its URL: nothing to read, but check 1 all the same.
    if (routed.subscription) {
      try {
        queryInput(req.url ?? '/');
      } catch (error) {
        metrics?.refused(error, routed.path);
        // (As the fast front answers it: a refused watch is an SSE error event.)
        sendSseRefusal(res, error as SignetError, routed.path);
        return;
      }
      watches.add(res);
      trpc(req, res);
      return;
    }
    readBody(req, services.maxBodyBytes).then(
      (body) => {
        // (Parsed here for check 1 alone; tRPC parses the text again, as it would any body.)
        try {
          parseJson(body, 'body');
        } catch (error) {
          metrics?.refused(error, routed.path);
          sendFailure(res, error, routed.path, services.logger);
          return;
        }
        // (tRPC reads an empty body as no input: refused at check 1 all the same, as not JSON.)
        (req as IncomingMessage & { body?: string }).body = body;
        trpc(req, res);
      },
      (error: unknown) => {
        metrics?.refused(error, routed.path);
        sendFailure(res, error, routed.path, services.logger);
      },
    );
  };
}

/**
 * The router as this front serves it: tRPC's SSE producer takes its ping from the router's root
 * config, which every Signet router shares, so this front gets a copy with its own.
 */
function withSsePing(router: AnyTRPCRouter, intervalMs: number): AnyTRPCRouter {
  const config = router._def._config;
  return {
    ...router,
    _def: {
      ...router._def,
      _config: { ...config, sse: { ...config.sse, ping: { enabled: true, intervalMs } } },
    },
  } as AnyTRPCRouter;
}

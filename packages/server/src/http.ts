import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AnyTRPCProcedure,
  type AnyTRPCRouter,
  getTRPCErrorFromUnknown,
  type TrackedEnvelope,
} from '@trpc/server';
import { SIGNED_JSON, SIGNED_PIECES, type SignedEnvelope } from './envelope-middleware.ts';
import { SignetError } from './errors.ts';
import { holdForTurn } from './hold-writes.ts';
import {
  parseJson,
  queryInput,
  readBody,
  routeCall,
  sendFailure,
  sendJson,
} from './http-checks.ts';
import { DEFAULT_HTTP_LIMITS } from './http-limits.ts';
import type { SignetServices } from './services.ts';
import { SSE_HEADERS, sendSseRefusal, sseEvents, writeSseData } from './sse.ts';
import type { SignetContext } from './trpc.ts';
import { guardWatchResponse } from './watch-responses.ts';

const CLIENT_GONE = new Error('the client went away');

/** The JSON text of a procedure's signed envelope. */
function jsonOf(envelope: SignedEnvelope): string {
  return envelope[SIGNED_JSON] ?? envelope[SIGNED_PIECES]?.json ?? JSON.stringify(envelope);
}

/** Writes a watch update's event: its shared pieces as they are, if it has them. */
function writeUpdate(res: ServerResponse, envelope: SignedEnvelope, id: string): boolean {
  const pieces = envelope[SIGNED_PIECES];
  return pieces ? writeSseData(res, pieces, id) : res.write(sseEvents.data(jsonOf(envelope), id));
}

/**
 * Signet's own HTTP front: tRPC's HTTP wire format (results, errors, SSE) over plain
 * `node:http`, calling the router's procedures as tRPC's request resolver does, with less work
 * per request than tRPC's standalone adapter (BENCHMARKS.md). Check 1 (size, media type, JSON)
 * is done here, with the HTTP layer it shares with `trpc-front.ts` (http-checks.ts); everything
 * else happens inside the procedures.
 */
export function createSignetRequestHandler(opts: {
  router: AnyTRPCRouter;
  services: SignetServices;
  /** How often a stream with nothing to say sends a `ping` event (default 15 s). */
  ssePingMs?: number;
  /** Answer `GET /metrics` (when `services.metrics` is on). */
  serveMetrics?: boolean;
  /**
   * Time and count each call here, into `services.metrics`, for a router built without the
   * metrics middleware (`startSignetServer`'s): a tRPC middleware costs more than the count.
   */
  measureCalls?: boolean;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { router, services } = opts;
  const front = { metrics: services.metrics, serve: opts.serveMetrics ?? false };
  /** The metrics this front counts calls into, if it does (see `measureCalls`). */
  const measured = opts.measureCalls ? services.metrics : undefined;
  const ssePingMs = opts.ssePingMs ?? DEFAULT_HTTP_LIMITS.ssePingMs;
  const ctx: SignetContext = { services };
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure>;

  async function call(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    procedure: AnyTRPCProcedure,
  ) {
    // Check 1's refusals are the HTTP layer's; past it, the call's (-1: not called yet).
    let startedAt = -1;
    try {
      const input = parseJson(await readBody(req, services.maxBodyBytes), 'body');
      startedAt = measured ? performance.now() : 0;
      const signed: SignedEnvelope = await procedure({
        ctx,
        getRawInput: async () => input,
        path,
        type: 'mutation',
        signal: undefined,
        batchIndex: 0,
      });
      measured?.called(path, startedAt, undefined);
      // tRPC's wire format for a mutation's result, with the envelope's own JSON text inside.
      sendJson(res, 200, `{"result":{"data":${jsonOf(signed)}}}`);
    } catch (error) {
      if (startedAt === -1) services.metrics?.refused(error, path);
      else measured?.called(path, startedAt, error);
      sendFailure(res, error, path, services.logger);
    }
  }

  /** Streams a watch_job call's signed updates, as tRPC's SSE adapter would. */
  async function stream(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    procedure: AnyTRPCProcedure,
  ) {
    const closed = new AbortController();
    // A context of its own, by which the stream's response is known (watch-responses.ts).
    const streamCtx: SignetContext = { services };
    guardWatchResponse(streamCtx, res, ssePingMs);
    let pinger: NodeJS.Timeout | undefined;
    res.once('close', () => {
      clearInterval(pinger);
      // (A reason of our own: the default one is a DOMException, whose stack trace costs.)
      closed.abort(CLIENT_GONE);
    });
    // What is ready in the same event-loop turn (the headers, `connected` and the job's current
    // state; its last update and `return`) goes out in one write.
    const hold = res.socket ? holdForTurn(res.socket) : () => {};
    /** The stream's headers and `connected` event, once. */
    const open = () => {
      hold();
      if (res.headersSent) return;
      res.writeHead(200, SSE_HEADERS);
      res.write(sseEvents.connected);
    };
    // -1: not called yet (check 1); then when it was; -2: counted (the stream opened).
    let startedAt = -1;
    try {
      const input = queryInput(req.url ?? '/');
      startedAt = measured ? performance.now() : 0;
      const updates: AsyncIterable<TrackedEnvelope<SignedEnvelope>> = await procedure({
        ctx: streamCtx,
        getRawInput: async () => input,
        path,
        type: 'subscription',
        signal: closed.signal,
        batchIndex: 0,
      });
      measured?.called(path, startedAt, undefined);
      startedAt = -2;
      open();
      // (A ping on a stream that just spoke is harmless: tRPC's clients and EventSource skip it.)
      pinger = setInterval(() => res.write(sseEvents.ping), ssePingMs);
      pinger.unref();
      for await (const [id, envelope] of updates) {
        hold();
        if (!writeUpdate(res, envelope, id)) {
          await once(res, 'drain', { signal: closed.signal });
        }
      }
      // (A client that went away gets nothing more, as from tRPC.)
      clearInterval(pinger);
      if (!closed.signal.aborted) {
        hold();
        res.end(sseEvents.return);
      }
    } catch (cause) {
      clearInterval(pinger);
      if (startedAt === -1) services.metrics?.refused(cause, path);
      else if (startedAt !== -2) measured?.called(path, startedAt, cause);
      if (closed.signal.aborted) return;
      const error = getTRPCErrorFromUnknown(cause);
      if (!(error instanceof SignetError) && error.code === 'INTERNAL_SERVER_ERROR') {
        services.logger.error({ err: error.cause ?? error, path }, 'subscription failed');
      }
      hold();
      sendSseRefusal(res, error, path);
    }
  }

  return (req, res) => {
    const routed = routeCall(req, res, procedures, front);
    if (!routed) return;
    if (routed.subscription) void stream(req, res, routed.path, routed.procedure);
    else void call(req, res, routed.path, routed.procedure);
  };
}

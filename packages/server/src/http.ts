import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AnyTRPCProcedure,
  type AnyTRPCRouter,
  getTRPCErrorFromUnknown,
  type TrackedEnvelope,
} from '@trpc/server';
import { SIGNED_JSON, type SignedEnvelope } from './envelope-middleware.ts';
import { SignetError } from './errors.ts';
import { holdForTurn } from './hold-writes.ts';
import { readBody, routeCall, sendFailure, sendJson } from './http-checks.ts';
import type { SignetServices } from './services.ts';
import { errorShape, type SignetContext } from './trpc.ts';

/** What tRPC's SSE adapter answers a subscription with (its `sseHeaders`, and its `vary`). */
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
  vary: 'trpc-accept, accept',
};

/**
 * tRPC's SSE events, as its `sseStreamProducer` writes them: each field on a line of its own,
 * then two more newlines. `sse.test.ts` holds these to tRPC's own output.
 */
export const sseEvents = {
  connected: 'event: connected\ndata: {}\n\n\n',
  data: (json: string, id: string) => `data: ${json}\nid: ${id}\n\n\n`,
  return: 'event: return\ndata: \n\n\n',
  error: (json: string) => `event: serialized-error\ndata: ${json}\n\n\n`,
};

const CLIENT_GONE = new Error('the client went away');

/** A subscription's `input` query parameter, parsed as tRPC parses it (absent: undefined). */
function queryInput(url: string): unknown {
  const text = new URL(url, 'http://localhost').searchParams.get('input');
  if (text === null) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new SignetError('PARSE_ERROR', 'the input is not valid JSON');
  }
}

/** The JSON text of a procedure's signed envelope. */
function jsonOf(envelope: SignedEnvelope): string {
  return envelope[SIGNED_JSON] ?? JSON.stringify(envelope);
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
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { router, services } = opts;
  const ctx: SignetContext = { services };
  const procedures = router._def.procedures as Record<string, AnyTRPCProcedure>;

  async function call(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    procedure: AnyTRPCProcedure,
  ) {
    try {
      const body = await readBody(req, services.maxBodyBytes);
      let input: unknown;
      try {
        input = JSON.parse(body);
      } catch {
        throw new SignetError('PARSE_ERROR', 'the body is not valid JSON');
      }
      const signed: SignedEnvelope = await procedure({
        ctx,
        getRawInput: async () => input,
        path,
        type: 'mutation',
        signal: undefined,
        batchIndex: 0,
      });
      // tRPC's wire format for a mutation's result, with the envelope's own JSON text inside.
      sendJson(res, 200, `{"result":{"data":${jsonOf(signed)}}}`);
    } catch (error) {
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
    // (A reason of our own: the default one is a DOMException, whose stack trace costs.)
    res.once('close', () => closed.abort(CLIENT_GONE));
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
    try {
      const input = queryInput(req.url ?? '/');
      const updates: AsyncIterable<TrackedEnvelope<SignedEnvelope>> = await procedure({
        ctx,
        getRawInput: async () => input,
        path,
        type: 'subscription',
        signal: closed.signal,
        batchIndex: 0,
      });
      open();
      for await (const [id, envelope] of updates) {
        hold();
        if (!res.write(sseEvents.data(jsonOf(envelope), id))) {
          await once(res, 'drain', { signal: closed.signal });
        }
      }
      // (A client that went away gets nothing more, as from tRPC.)
      if (!closed.signal.aborted) {
        hold();
        res.end(sseEvents.return);
      }
    } catch (cause) {
      if (closed.signal.aborted) return;
      const error = getTRPCErrorFromUnknown(cause);
      if (!(error instanceof SignetError) && error.code === 'INTERNAL_SERVER_ERROR') {
        services.logger.error({ err: error.cause ?? error, path }, 'subscription failed');
      }
      open();
      res.end(sseEvents.error(JSON.stringify(errorShape(error, path))));
    }
  }

  return (req, res) => {
    const routed = routeCall(req, res, procedures);
    if (!routed) return;
    if (routed.subscription) void stream(req, res, routed.path, routed.procedure);
    else void call(req, res, routed.path, routed.procedure);
  };
}

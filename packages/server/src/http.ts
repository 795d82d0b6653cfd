import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  type AnyTRPCProcedure,
  type AnyTRPCRouter,
  getTRPCErrorFromUnknown,
  type TRPCError,
  type TrackedEnvelope,
} from '@trpc/server';
import { SIGNED_JSON, type SignedEnvelope } from './envelope-middleware.ts';
import { SignetError } from './errors.ts';
import { holdForTurn } from './hold-writes.ts';
import type { SignetServices } from './services.ts';
import { errorShape, type SignetContext } from './trpc.ts';

const TRPC_PREFIX = '/trpc/';

function sendJson(
  res: ServerResponse,
  status: number,
  body: string,
  headers?: Record<string, string>,
) {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function sendError(res: ServerResponse, error: TRPCError, path: string | undefined) {
  const shape = errorShape(error, path);
  const headers: Record<string, string> = {};
  if (error instanceof SignetError && error.retryAfter !== undefined) {
    headers['retry-after'] = String(error.retryAfter);
  }
  sendJson(res, shape.data.httpStatus, JSON.stringify({ error: shape }), headers);
}

function isJson(contentType: string | undefined): boolean {
  if (contentType === 'application/json') return true;
  if (!contentType) return false;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return type === 'application/json';
}

/** How much of a refused body is still read (and dropped), and for how long, before closing. */
const LINGER_BYTES = 8 * 1024 * 1024;
const LINGER_MS = 2_000;

/**
 * Drops the rest of a refused body for a while, then closes the connection if it is still
 * coming. Closing a socket with unread input makes the kernel send a reset, which can destroy
 * the 413 on its way to a client that is still sending ("lingering close", as nginx does).
 */
function discardRest(req: IncomingMessage): void {
  const socket = req.socket;
  let dropped = 0;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  const done = () => clearTimeout(timer);
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) {
      done();
      socket.destroy();
    }
  });
  req.once('end', done);
  req.once('close', done);
  req.resume();
}

function tooLarge(req: IncomingMessage, limit: number): SignetError {
  discardRest(req);
  return new SignetError('PAYLOAD_TOO_LARGE', `the body is larger than ${limit} bytes`);
}

/** Reads the body, refusing past `limit` bytes as soon as it is exceeded (never buffering it). */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  if (Number(req.headers['content-length']) > limit) return Promise.reject(tooLarge(req, limit));
  // (Inline callbacks: this runs on every call.)
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > limit) return; // refused already; discardRest drops the rest
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        reject(tooLarge(req, limit));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (size > limit) return;
      // A body in one chunk (the usual case) is decoded in place, without a copy.
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      resolve(body.toString('utf8'));
    });
    req.once('error', reject);
  });
}

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
 * is done here; everything else happens inside the procedures.
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
      if (error instanceof SignetError || (error as TRPCError)?.name === 'TRPCError') {
        sendError(res, error as TRPCError, path);
      } else {
        services.logger.error({ err: error, path }, 'unexpected error');
        sendError(res, new SignetError('INTERNAL', 'internal error'), path);
      }
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
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const pathname = queryAt === -1 ? url : url.slice(0, queryAt);
    if (pathname === '/healthz') {
      sendJson(res, 200, '{"ok":true}');
      return;
    }
    if (!pathname.startsWith(TRPC_PREFIX)) {
      sendError(res, new SignetError('UNKNOWN_TOOL', 'not found'), undefined);
      return;
    }
    let path: string;
    try {
      path = decodeURIComponent(pathname.slice(TRPC_PREFIX.length));
    } catch {
      // A malformed %-escape names no tool; thrown here it would take the process down.
      sendError(res, new SignetError('UNKNOWN_TOOL', 'not found'), undefined);
      return;
    }
    if (path.includes(',') || (queryAt !== -1 && /[?&]batch=/.test(url))) {
      sendError(res, new SignetError('BAD_ENVELOPE', 'batching is not supported'), undefined);
      return;
    }
    const procedure = Object.hasOwn(procedures, path) ? procedures[path] : undefined;
    if (!procedure) {
      sendError(res, new SignetError('UNKNOWN_TOOL', `no tool "${path}"`), path);
      return;
    }
    const subscription = procedure._def.type === 'subscription';
    const expected = subscription ? 'GET' : 'POST';
    if (req.method !== expected) {
      sendError(res, new SignetError('METHOD_NOT_ALLOWED', `use ${expected} for ${path}`), path);
      return;
    }
    if (subscription) {
      void stream(req, res, path, procedure);
      return;
    }
    if (!isJson(req.headers['content-type'])) {
      sendError(
        res,
        new SignetError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json'),
        path,
      );
      return;
    }
    void call(req, res, path, procedure);
  };
}

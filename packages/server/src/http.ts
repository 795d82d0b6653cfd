import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnyTRPCRouter, TRPCError } from '@trpc/server';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { SignetError } from './errors.ts';
import { type SignedCall, signedCallsOf } from './router.ts';
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

/**
 * The HTTP front of a Signet server. Signed calls (POST) take a direct path into the same tRPC
 * router that tRPC's own adapter would call, with tRPC's wire format for results and errors;
 * subscriptions (watch_job, GET + SSE) go through tRPC's own adapter.
 */
export function createSignetRequestHandler(opts: {
  router: AnyTRPCRouter;
  services: SignetServices;
}): (req: IncomingMessage, res: ServerResponse) => void {
  const { router, services } = opts;
  const ctx: SignetContext = { services };
  const calls = signedCallsOf(router);
  const subscriptions = new Set(
    Object.entries(router._def.procedures as Record<string, { _def: { type: string } }>)
      .filter(([, procedure]) => procedure._def.type === 'subscription')
      .map(([name]) => name),
  );
  const trpcHandler = createHTTPHandler({
    router,
    basePath: '/trpc/',
    allowBatching: false,
    maxBodySize: services.maxBodyBytes,
    createContext: () => ctx,
    onError: ({ error, path }) => {
      if (!(error instanceof SignetError) && error.code === 'INTERNAL_SERVER_ERROR') {
        services.logger.error({ err: error.cause ?? error, path }, 'subscription failed');
      }
    },
  });

  async function call(req: IncomingMessage, res: ServerResponse, path: string, run: SignedCall) {
    try {
      const body = await readBody(req, services.maxBodyBytes);
      let input: unknown;
      try {
        input = JSON.parse(body);
      } catch {
        throw new SignetError('PARSE_ERROR', 'the body is not valid JSON');
      }
      const signed = await run(input, services);
      // tRPC's wire format for a mutation's result, with the envelope's own JSON text inside.
      sendJson(res, 200, `{"result":{"data":${signed.json}}}`);
    } catch (error) {
      if (error instanceof SignetError || (error as TRPCError)?.name === 'TRPCError') {
        sendError(res, error as TRPCError, path);
      } else {
        services.logger.error({ err: error, path }, 'unexpected error');
        sendError(res, new SignetError('INTERNAL', 'internal error'), path);
      }
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
    const run = calls.get(path);
    const isSubscription = subscriptions.has(path);
    if (!run && !isSubscription) {
      sendError(res, new SignetError('UNKNOWN_TOOL', `no tool "${path}"`), path);
      return;
    }
    const expected = isSubscription ? 'GET' : 'POST';
    if (req.method !== expected) {
      sendError(res, new SignetError('METHOD_NOT_ALLOWED', `use ${expected} for ${path}`), path);
      return;
    }
    if (isSubscription) {
      trpcHandler(req, res);
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
    void call(req, res, path, run!);
  };
}

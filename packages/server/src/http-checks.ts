import type { IncomingMessage, ServerResponse } from 'node:http';
import { duplicateMemberName, MAX_VALUES, moreValuesThan } from '@signet/protocol';
import type { AnyTRPCProcedure, TRPCError } from '@trpc/server';
import type { Logger } from 'pino';
import { SignetError } from './errors.ts';
import type { SignetMetrics } from './metrics.ts';
import { errorShape } from './trpc.ts';

// The HTTP layer both fronts share (http.ts, trpc-front.ts): the route (health check, tool,
// batching, method) and check 1 of DESIGN 1.4 up to the body's text (media type, size), and how a
// refusal is written. What a front does after `routeCall` is its own.

const TRPC_PREFIX = '/trpc/';

export function sendJson(
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

/** The `Retry-After` header's value for `error` (a 429's), if it has one. */
export function retryAfterOf(error: unknown): string | undefined {
  return error instanceof SignetError && error.retryAfter !== undefined
    ? String(error.retryAfter)
    : undefined;
}

export function sendError(res: ServerResponse, error: TRPCError, path: string | undefined) {
  const shape = errorShape(error, path);
  const retryAfter = retryAfterOf(error);
  const headers = retryAfter === undefined ? undefined : { 'retry-after': retryAfter };
  sendJson(res, shape.data.httpStatus, JSON.stringify({ error: shape }), headers);
}

/** Answers anything thrown while serving a call: a refusal as it is, the rest logged, as INTERNAL. */
export function sendFailure(
  res: ServerResponse,
  error: unknown,
  path: string | undefined,
  logger: Logger,
) {
  if (error === CLIENT_GONE) {
    // (Nobody is left to answer, and nothing went wrong here: not an error of the server's.)
    logger.debug({ path }, 'the client went away before its request was read');
    return;
  }
  if (error instanceof SignetError || (error as TRPCError)?.name === 'TRPCError') {
    sendError(res, error as TRPCError, path);
  } else {
    logger.error({ err: error, path }, 'unexpected error');
    sendError(res, new SignetError('INTERNAL', 'internal error'), path);
  }
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
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
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
    req.once('error', () => reject(CLIENT_GONE));
  });
}

/** Why a body was not read to its end: the connection closed first (or timed out: a 408). */
const CLIENT_GONE = new Error('the client went away');

/** A call that passed the HTTP layer: a procedure, and the method and media type it takes. */
export interface RoutedCall {
  path: string;
  procedure: AnyTRPCProcedure;
  /** watch_job: a GET answered with SSE; every other tool is a POST of JSON. */
  subscription: boolean;
}

/** Answers a refusal of the HTTP layer, counted in the metrics (if on). */
export function refuse(
  res: ServerResponse,
  error: SignetError,
  path: string | undefined,
  metrics: SignetMetrics | undefined,
): void {
  metrics?.refused(error, path);
  sendError(res, error, path);
}

/** How a front serves metrics: counts into `metrics`, and answers `GET /metrics` if `serve`. */
export interface FrontMetrics {
  metrics: SignetMetrics | undefined;
  serve: boolean;
}

/**
 * Routes a request: answers `GET /healthz` (and `GET /metrics`, when served here), and refuses
 * what no tool takes (a path outside `/trpc/`, an unknown tool, batching, the wrong method, a
 * body that is not JSON) before any body is read. Returns the call to make, or undefined once
 * it has answered.
 */
export function routeCall(
  req: IncomingMessage,
  res: ServerResponse,
  procedures: Readonly<Record<string, AnyTRPCProcedure>>,
  front?: FrontMetrics,
): RoutedCall | undefined {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const pathname = queryAt === -1 ? url : url.slice(0, queryAt);
  if (pathname === '/healthz') {
    sendJson(res, 200, '{"ok":true}');
    return undefined;
  }
  const metrics = front?.metrics;
  if (!pathname.startsWith(TRPC_PREFIX)) {
    if (pathname === '/metrics' && metrics && front.serve) {
      void metrics.serve(req, res);
      return undefined;
    }
    refuse(res, new SignetError('UNKNOWN_TOOL', 'not found'), undefined, metrics);
    return undefined;
  }
  let path: string;
  try {
    path = decodeURIComponent(pathname.slice(TRPC_PREFIX.length));
  } catch {
    // A malformed %-escape names no tool; thrown here it would take the process down.
    refuse(res, new SignetError('UNKNOWN_TOOL', 'not found'), undefined, metrics);
    return undefined;
  }
  if (path.includes(',') || (queryAt !== -1 && /[?&]batch=/.test(url))) {
    refuse(res, new SignetError('BAD_ENVELOPE', 'batching is not supported'), undefined, metrics);
    return undefined;
  }
  const procedure = Object.hasOwn(procedures, path) ? procedures[path] : undefined;
  if (!procedure) {
    // (Counted under the unknown-tool label: the caller chooses the path.)
    refuse(res, new SignetError('UNKNOWN_TOOL', `no tool "${path}"`), path, metrics);
    return undefined;
  }
  const subscription = procedure._def.type === 'subscription';
  const expected = subscription ? 'GET' : 'POST';
  if (req.method !== expected) {
    refuse(
      res,
      new SignetError('METHOD_NOT_ALLOWED', `use ${expected} for ${path}`),
      path,
      metrics,
    );
    return undefined;
  }
  if (!subscription && !isJson(req.headers['content-type'])) {
    refuse(
      res,
      new SignetError('UNSUPPORTED_MEDIA_TYPE', 'the body must be application/json'),
      path,
      metrics,
    );
    return undefined;
  }
  return { path, procedure, subscription };
}

/**
 * Check 1's parse: `text` as JSON, refused (400 PARSE_ERROR, unsigned) unless it is I-JSON, so
 * that no parser can see another call in it than the one that is verified (DESIGN 1.1), and
 * first unless it holds at most MAX_VALUES values, counted in the text: what a body costs before
 * its signature is checked grows with its values (as a body nested too deep, a 400).
 */
export function parseJson(text: string, what: 'body' | 'input'): unknown {
  if (moreValuesThan(text)) {
    throw new SignetError('PARSE_ERROR', `the ${what} holds more than ${MAX_VALUES} JSON values`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SignetError('PARSE_ERROR', `the ${what} is not valid JSON`);
  }
  const duplicate = duplicateMemberName(text);
  if (duplicate !== undefined) {
    throw new SignetError(
      'PARSE_ERROR',
      `the ${what} names the member ${JSON.stringify(duplicate.slice(0, 64))} twice in one object`,
    );
  }
  return value;
}

/** A subscription's `input` query parameter, parsed as check 1 parses a body (absent: undefined). */
export function queryInput(url: string): unknown {
  const text = new URL(url, 'http://localhost').searchParams.get('input');
  return text === null ? undefined : parseJson(text, 'input');
}

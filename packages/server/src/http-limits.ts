import { createServer, type RequestListener, type Server } from 'node:http';

/**
 * What one connection may take of the server: time to send its headers and its whole request,
 * time idle between requests, and how many connections there may be at once. A request past its
 * time is answered 408 (while nothing of a response was written) and its connection closed, by
 * Node itself; a request that has been read (an SSE stream that is delivering, a job) is never
 * cut by these.
 */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Past this, a new connection is closed at once. */
  maxConnections: number;
  /** How often an SSE stream with nothing to say sends a `ping` event, so dead peers show. */
  ssePingMs: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 10_000,
  ssePingMs: 15_000,
};

/**
 * Node checks the request timeouts only every `connectionsCheckingInterval` (30 s unless set):
 * this makes a timeout hold to within about a second.
 */
const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;

/** The limits in force: the defaults with `overrides`, refused if they cannot hold together. */
export function httpLimits(overrides: Partial<HttpLimits> = {}): HttpLimits {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, not ${value}`);
    }
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new RangeError('headersTimeoutMs must not exceed requestTimeoutMs');
  }
  return limits;
}

/** A `node:http` server that holds every connection to `limits`. */
export function createLimitedServer(limits: HttpLimits, listener: RequestListener): Server {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(
        CONNECTIONS_CHECKING_INTERVAL_MS,
        limits.headersTimeoutMs,
      ),
    },
    listener,
  );
  server.maxConnections = limits.maxConnections;
  return server;
}

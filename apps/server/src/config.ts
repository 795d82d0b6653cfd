import {
  type ClientLimits,
  DEFAULT_AUDIT_MAX_BYTES,
  DEFAULT_CHECKPOINT_MS,
  DEFAULT_CLIENT_LIMITS,
  DEFAULT_HTTP_LIMITS,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_WINDOW_MS,
  HTTP_FRONTS,
  type HttpFront,
  type HttpLimits,
} from '@signet/server';
import { DEFAULT_NAMESPACE } from '@signet/server/redis';

/** A configuration problem: the process stops with this one-line message. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type StoreConfig =
  | { kind: 'memory' }
  | { kind: 'sqlite'; path: string }
  | { kind: 'redis'; url: string };

/** `SIGNET_AUDIT` and its companions: where the audit log goes, or `off`. */
export type AuditConfig = 'off' | { folder: string; maxBytes: number; checkpointEveryMs: number };

/**
 * `SIGNET_METRICS`: `off`; `on` = `GET /metrics` on the API's port; `{ port }` = on a listener of
 * its own on 127.0.0.1 (0 picks a free port).
 */
export type MetricsConfig = 'off' | 'on' | { port: number };

export interface Config {
  host: string;
  port: number;
  keyringPath: string;
  store: StoreConfig;
  role: 'all' | 'api';
  /** `signet`: Signet's fast HTTP front; `trpc`: the same router through tRPC's adapter. */
  httpFront: HttpFront;
  /** Timeouts, connection cap and SSE keep-alive of the HTTP server. */
  httpLimits: HttpLimits;
  windowMs: number;
  maxBodyBytes: number;
  /** The largest job output kept, in bytes of UTF-8 JSON (`SIGNET_MAX_OUTPUT_BYTES`). */
  maxOutputBytes: number;
  concurrency: number;
  retentionMs: number;
  graceMs: number;
  /** With Redis: how soon a dead worker's job is noticed (BullMQ's lock duration). */
  lockMs: number;
  /** With Redis: what this deployment's keys and queue name start with. */
  namespace: string;
  /** Calls per second per client, sustained and burst; undefined = unlimited. */
  rateLimit: { perSecond: number; burst: number } | undefined;
  /** Watch streams (per process) and unfinished jobs (per deployment) each client may hold. */
  clientLimits: ClientLimits;
  /** Prometheus metrics (`SIGNET_METRICS`). */
  metrics: MetricsConfig;
  /** The audit log (`SIGNET_AUDIT`, `SIGNET_AUDIT_MAX_BYTES`, `SIGNET_AUDIT_CHECKPOINT_MS`). */
  audit: AuditConfig;
  logLevel: string;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, not "${raw}"`);
  }
  return value;
}

export function parseStore(raw: string): StoreConfig {
  if (raw === 'memory:') return { kind: 'memory' };
  if (raw.startsWith('sqlite:')) {
    const path = raw.slice('sqlite:'.length);
    if (!path)
      throw new ConfigError('SIGNET_STORE=sqlite: needs a path, e.g. sqlite:.signet/signet.db');
    return { kind: 'sqlite', path };
  }
  if (raw.startsWith('redis://') || raw.startsWith('rediss://')) {
    try {
      new URL(raw);
    } catch {
      throw new ConfigError(`SIGNET_STORE is not a valid Redis URL: "${raw}"`);
    }
    return { kind: 'redis', url: raw };
  }
  throw new ConfigError(
    `SIGNET_STORE must be sqlite:<path>, memory: or redis://host:port[/db], not "${raw}"`,
  );
}

function rateLimit(env: NodeJS.ProcessEnv): Config['rateLimit'] {
  const perSecond = integer(env, 'SIGNET_RATE_LIMIT', 20_000, 0, 10_000_000);
  if (perSecond === 0) return undefined;
  return { perSecond, burst: integer(env, 'SIGNET_RATE_BURST', perSecond, 1, 10_000_000) };
}

function namespace(env: NodeJS.ProcessEnv): string {
  const raw = env.SIGNET_NAMESPACE || DEFAULT_NAMESPACE;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(raw)) {
    throw new ConfigError(
      `SIGNET_NAMESPACE must be 1 to 64 letters, digits, "-" or "_", not "${raw.slice(0, 80)}"`,
    );
  }
  return raw;
}

function httpFront(env: NodeJS.ProcessEnv): HttpFront {
  const raw = env.SIGNET_HTTP || 'signet';
  if (!(HTTP_FRONTS as readonly string[]).includes(raw)) {
    const fronts = HTTP_FRONTS.map((front) => `"${front}"`).join(' or ');
    throw new ConfigError(`SIGNET_HTTP must be ${fronts}, not "${raw.slice(0, 80)}"`);
  }
  return raw as HttpFront;
}

function httpLimits(env: NodeJS.ProcessEnv): HttpLimits {
  const d = DEFAULT_HTTP_LIMITS;
  const hour = 3_600_000;
  const limits: HttpLimits = {
    headersTimeoutMs: integer(env, 'SIGNET_HEADERS_TIMEOUT_MS', d.headersTimeoutMs, 100, hour),
    requestTimeoutMs: integer(env, 'SIGNET_REQUEST_TIMEOUT_MS', d.requestTimeoutMs, 100, hour),
    keepAliveTimeoutMs: integer(env, 'SIGNET_KEEPALIVE_TIMEOUT_MS', d.keepAliveTimeoutMs, 1, hour),
    maxConnections: integer(env, 'SIGNET_MAX_CONNECTIONS', d.maxConnections, 1, 1_000_000),
    ssePingMs: integer(env, 'SIGNET_SSE_PING_MS', d.ssePingMs, 100, hour),
  };
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new ConfigError(
      `SIGNET_HEADERS_TIMEOUT_MS (${limits.headersTimeoutMs}) must not exceed SIGNET_REQUEST_TIMEOUT_MS (${limits.requestTimeoutMs})`,
    );
  }
  return limits;
}

function metrics(env: NodeJS.ProcessEnv, apiPort: number): MetricsConfig {
  const raw = env.SIGNET_METRICS || 'off';
  if (raw === 'off' || raw === 'on') return raw;
  const port = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new ConfigError(
      `SIGNET_METRICS must be "off", "on" or a port from 0 to 65535, not "${raw.slice(0, 80)}"`,
    );
  }
  if (port !== 0 && port === apiPort) {
    throw new ConfigError(
      `SIGNET_METRICS=${port} is SIGNET_PORT: use "on" to serve /metrics on the API's port`,
    );
  }
  return { port };
}

export const DEFAULT_AUDIT = '.signet/audit/';

function audit(env: NodeJS.ProcessEnv): AuditConfig {
  const folder = env.SIGNET_AUDIT || DEFAULT_AUDIT;
  if (folder === 'off') return 'off';
  return {
    folder,
    maxBytes: integer(
      env,
      'SIGNET_AUDIT_MAX_BYTES',
      DEFAULT_AUDIT_MAX_BYTES,
      64 * 1024,
      Number.MAX_SAFE_INTEGER,
    ),
    checkpointEveryMs: integer(
      env,
      'SIGNET_AUDIT_CHECKPOINT_MS',
      DEFAULT_CHECKPOINT_MS,
      100,
      86_400_000,
    ),
  };
}

export const DEFAULT_STORE = 'sqlite:.signet/signet.db';

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const role = env.SIGNET_ROLE || 'all';
  if (role !== 'all' && role !== 'api') {
    throw new ConfigError(`SIGNET_ROLE must be "all" or "api", not "${role}"`);
  }
  const store = parseStore(env.SIGNET_STORE || DEFAULT_STORE);
  if (role === 'api' && store.kind !== 'redis') {
    throw new ConfigError(
      'SIGNET_ROLE=api leaves jobs to workers, which need a shared redis:// store (SIGNET_STORE)',
    );
  }
  const port = integer(env, 'SIGNET_PORT', 8787, 0, 65535);
  return {
    host: env.SIGNET_HOST || '127.0.0.1',
    port,
    keyringPath: env.SIGNET_KEYRING || '.signet/keyring.json',
    store,
    role,
    httpFront: httpFront(env),
    httpLimits: httpLimits(env),
    windowMs: integer(env, 'SIGNET_WINDOW_MS', DEFAULT_WINDOW_MS, 1_000, 86_400_000),
    maxBodyBytes: integer(
      env,
      'SIGNET_MAX_BODY_BYTES',
      DEFAULT_MAX_BODY_BYTES,
      1_024,
      64 * 1024 * 1024,
    ),
    // As large as a request body by default: a job's output is stored and sent to its watchers.
    maxOutputBytes: integer(
      env,
      'SIGNET_MAX_OUTPUT_BYTES',
      DEFAULT_MAX_BODY_BYTES,
      1_024,
      64 * 1024 * 1024,
    ),
    concurrency: integer(env, 'SIGNET_CONCURRENCY', 4, 1, 1_000),
    retentionMs: integer(env, 'SIGNET_RETENTION_MS', 3_600_000, 1_000, 30 * 86_400_000),
    graceMs: integer(env, 'SIGNET_GRACE_MS', 10_000, 0, 600_000),
    lockMs: integer(env, 'SIGNET_LOCK_MS', 10_000, 1_000, 600_000),
    namespace: namespace(env),
    rateLimit: rateLimit(env),
    clientLimits: {
      watchStreams: integer(
        env,
        'SIGNET_MAX_WATCHES_PER_CLIENT',
        DEFAULT_CLIENT_LIMITS.watchStreams,
        1,
        1_000_000,
      ),
      unfinishedJobs: integer(
        env,
        'SIGNET_MAX_JOBS_PER_CLIENT',
        DEFAULT_CLIENT_LIMITS.unfinishedJobs,
        1,
        100_000_000,
      ),
    },
    metrics: metrics(env, port),
    audit: audit(env),
    logLevel: env.SIGNET_LOG_LEVEL || 'info',
  };
}

import type { Logger } from 'pino';
import type { AuditRecorder } from './audit/recorder.ts';
import type { JobEngine } from './jobs/types.ts';
import type { Keyring } from './keyring.ts';
import type { ClientLimits, WatchSlots } from './limits.ts';
import type { SignetMetrics } from './metrics.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { NonceStore } from './stores/types.ts';

export const DEFAULT_WINDOW_MS = 300_000;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** What the envelope middleware and the built-in tools need; one object shared by every call. */
export interface SignetServices {
  /** The keyring in force now (it may be reloaded between calls). */
  keyring(): Keyring;
  nonces: NonceStore;
  jobs: JobEngine;
  logger: Logger;
  /** Freshness window for `ts_ms`, both directions (DESIGN 1.4 check 5). */
  windowMs: number;
  maxBodyBytes: number;
  /** Per-client call budget; absent = unlimited. */
  rateLimiter?: RateLimiter;
  /** What each client may hold open at once (checked before the nonce claim, as the rate). */
  limits: ClientLimits;
  /** The watch streams each client has open in this process, under `limits.watchStreams`. */
  watchSlots: WatchSlots;
  /** Records every authenticated call and job change, when the audit log is on. */
  audit?: AuditRecorder;
  /** Counts calls and refusals, when the server's metrics are on. */
  metrics?: SignetMetrics;
  now(): number;
}

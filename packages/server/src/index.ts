// `@signet/server`: what an app needs to serve its tools. By name, so that nothing internal
// leaks, and nothing here reaches the optional peers (better-sqlite3, bullmq, ioredis): those
// are behind `@signet/server/sqlite` and `/redis` (exports.test.ts checks the import graph).
export { DEFAULT_CHECKPOINT_MS, type SignetAuditOptions } from './audit/recorder.ts';
export {
  type AuditSigningKey,
  DEFAULT_MAX_BYTES as DEFAULT_AUDIT_MAX_BYTES,
} from './audit/writer.ts';
export type { Backend, BackendContext, JobChangeListener, RunningBackend } from './backend.ts';
export { type EnvelopeContext, SIGNED_JSON, type SignedEnvelope } from './envelope-middleware.ts';
export { SignetError, StoreUnavailableError } from './errors.ts';
export type { Handlers, ToolCallContext, ToolHandler } from './handlers.ts';
export { DEFAULT_HTTP_LIMITS, type HttpLimits } from './http-limits.ts';
export { ToolError } from './jobs/tool-error.ts';
export type {
  JobAdmission,
  JobContext,
  JobDefinition,
  JobEngine,
  JobHandler,
  JobUpdate,
  StartJobRequest,
} from './jobs/types.ts';
export {
  generateKeyringFile,
  generateSecret,
  type HmacKeyringFile,
  Keyring,
  KeyringError,
  type KeyringFile,
  keyringFileSchema,
  type ServerKey,
} from './keyring.ts';
export { type KeyringWatcher, watchKeyring } from './keyring-watcher.ts';
export { type ClientLimits, DEFAULT_CLIENT_LIMITS } from './limits.ts';
export {
  type SignetMetrics,
  type SignetMetricsOption,
  UNKNOWN_TOOL_LABEL,
} from './metrics.ts';
export {
  createSignetRouter,
  type SignetMiddleware,
  type SignetRouter,
  type SignetRouterOptions,
} from './router.ts';
export {
  HTTP_FRONTS,
  type HttpFront,
  type RunningSignetServer,
  type SignetServerMetricsOption,
  type SignetServerOptions,
  startSignetServer,
} from './server.ts';
export { DEFAULT_MAX_BODY_BYTES, DEFAULT_WINDOW_MS } from './services.ts';
export { createSignet, type Signet, type SignetOptions } from './signet.ts';
export { MemoryStore } from './stores/memory.ts';
export type { MaybePromise, NonceStore } from './stores/types.ts';
export {
  errorShape,
  type SignetCallContext,
  type SignetCallInfo,
  type SignetContext,
  type SignetErrorShape,
  type SignetMeta,
  type SignetProcedureKind,
  signedProcedure,
} from './trpc.ts';

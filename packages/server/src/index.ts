export * from './backend.ts';
export { type EnvelopeContext, SIGNED_JSON, type SignedEnvelope } from './envelope-middleware.ts';
export * from './errors.ts';
export * from './handlers.ts';
export * from './http.ts';
export * from './http-limits.ts';
export * from './jobs/local-engine.ts';
export * from './jobs/record.ts';
export * from './jobs/tool-error.ts';
export * from './jobs/types.ts';
export * from './keyring.ts';
export * from './keyring-watcher.ts';
export * from './limits.ts';
export * from './rate-limit.ts';
export * from './redis/backend.ts';
export { redactUrl } from './redis/connection.ts';
export * from './redis/job-engine.ts';
export * from './redis/nonce-store.ts';
export * from './router.ts';
export * from './server.ts';
export * from './services.ts';
export * from './signet.ts';
export * from './stores/memory.ts';
export * from './stores/sqlite.ts';
export * from './stores/types.ts';
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
export * from './trpc-front.ts';

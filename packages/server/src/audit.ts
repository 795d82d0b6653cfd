// `@signet/server/audit`: the tamper-evident audit log: hash-chained JSONL files with signed
// checkpoints (AuditLog), and what checks them offline (verifyAuditFolder; `pnpm audit-log`).
export {
  type AppendPayload,
  type AuditEntry,
  type AuditOutcome,
  argsDigest,
  type CallEntry,
  type CallPayload,
  type CheckpointEntry,
  type JobEntry,
  type JobPayload,
} from './audit/chain.ts';
export { type ChainFile, type ChainLine, listChains, readLines } from './audit/files.ts';
export {
  type AuditFailure,
  type AuditKeys,
  type AuditReport,
  type ChainReport,
  verifyAuditFolder,
} from './audit/verify.ts';
export {
  AuditLog,
  type AuditLogOptions,
  type AuditSigningKey,
  DEFAULT_MAX_BYTES,
} from './audit/writer.ts';

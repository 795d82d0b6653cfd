export {
  type BuiltInContract,
  type BuiltInName,
  cancelJob,
  listTools,
  pollJob,
  serverIdentity,
  watchJob,
} from './built-ins.ts';
export { type ContractSetOf, contractSet } from './contract-set.ts';
export {
  type AnyContract,
  type BuiltInOperation,
  type ContractSet,
  defineJob,
  defineTool,
  isBuiltInContract,
  type JobContract,
  type JobControlContract,
  type JobControlOperation,
  type ObjectSchema,
  type ToolContract,
  type UserContract,
} from './define.ts';
export {
  buildManifest,
  type Manifest,
  type ManifestTool,
  manifestFingerprint,
} from './manifest.ts';
export type { JobTicket, SignetRouter, SignetRouterContext } from './router-type.ts';

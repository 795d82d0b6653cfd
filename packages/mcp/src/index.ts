export {
  BRIDGE_NAME,
  BRIDGE_VERSION,
  createSignetBridge,
  type SignetBridge,
  type SignetBridgeOptions,
} from './bridge.ts';
export {
  type BridgeConfig,
  BridgeConfigError,
  DEFAULT_SIGNET_URL,
  loadBridgeConfig,
} from './config.ts';
export { type BridgeDiscovery, type BridgeTool, ManifestError } from './discovery.ts';
export { type HttpBridge, type HttpBridgeOptions, MCP_PATH, serveHttp } from './http.ts';
export { META_JOB_ID, META_REASON } from './outcome.ts';
export { type StdioBridge, type StdioBridgeOptions, serveStdio } from './stdio.ts';
export {
  type BridgeCallResult,
  type BridgeToolTable,
  type McpToolCaller,
  typedBridge,
} from './typed-calls.ts';

export {
  type SignetProgressEvent,
  SignetToolError,
  type SignetToolName,
  type SignetToolReason,
  type SignetTools,
  type SignetToolsClient,
  type SignetToolsOptions,
  signetTools,
} from './tools.ts';

import { buildManifest, type ContractSet, manifestFingerprint } from '@signet/contracts';
import { MAX_DEPTH, PROTOCOL_VERSION } from '@signet/protocol';
import type { SignetServices } from './services.ts';

/** `server_identity`'s answer, computed once per router: who this server is and its limits. */
export function identityOf(contracts: ContractSet) {
  const fingerprint = manifestFingerprint(buildManifest(contracts));
  const tools = Object.keys(contracts);
  return (serverId: string, services: SignetServices) => ({
    server_id: serverId,
    fingerprint,
    capabilities: {
      protocol: PROTOCOL_VERSION,
      tools: [...tools],
      limits: {
        max_body_bytes: services.maxBodyBytes,
        max_depth: MAX_DEPTH,
        freshness_window_ms: services.windowMs,
      },
    },
  });
}

import { buildManifest, type ContractSet, manifestFingerprint } from '@signet/contracts';
import { MAX_DEPTH, PROTOCOL_VERSION } from '@signet/protocol';
import type { SignetServices } from './services.ts';

/**
 * The answers of the built-in tools that are not job control, computed once per router:
 * `server_identity` (who this server is, and its limits) and `list_tools` (the manifest).
 */
export function builtInAnswers(contracts: ContractSet) {
  const manifest = buildManifest(contracts);
  const fingerprint = manifestFingerprint(manifest);
  const tools = Object.keys(contracts);
  const identity = (serverId: string, services: SignetServices) => {
    const serverKeys = services.keyring().serverKeys;
    return {
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
        // (Only a keyring with server keys has any: an HMAC-only server answers as before.)
        ...(serverKeys.length > 0
          ? {
              server_keys: serverKeys.map((k) => ({
                kid: k.kid,
                alg: k.alg,
                public_key: k.publicKey,
              })),
            }
          : {}),
      },
    };
  };
  return { identity, manifest: () => manifest };
}

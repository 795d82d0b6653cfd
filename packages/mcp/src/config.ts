import { CredentialsError, credentialsFromEnv, type SignetCredentials } from '@signet/client';

/** A configuration problem: `pnpm mcp` stops with this one-line message. */
export class BridgeConfigError extends Error {
  override name = 'BridgeConfigError';
}

export interface BridgeConfig {
  /** `SIGNET_URL`: the Signet server. */
  url: string;
  /** `SIGNET_CREDENTIALS`, or `SIGNET_KEYRING` + `SIGNET_CLIENT_ID`: the one client's key. */
  credentials: SignetCredentials;
  /** `SIGNET_MCP_PORT`: serve Streamable HTTP on this port (0: any free one); unset: stdio. */
  port: number | undefined;
}

export const DEFAULT_SIGNET_URL = 'http://127.0.0.1:8787';

function signetUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new BridgeConfigError(`SIGNET_URL is not a URL: "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BridgeConfigError(`SIGNET_URL must be http:// or https://, not "${raw}"`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new BridgeConfigError(
      `SIGNET_URL must be the server's base URL, with no query or credentials: "${raw}"`,
    );
  }
  return url.href.replace(/\/+$/, '');
}

function port(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value > 65_535) {
    throw new BridgeConfigError(`SIGNET_MCP_PORT must be an integer from 0 to 65535, not "${raw}"`);
  }
  return value;
}

/** The bridge's configuration from the environment, as `pnpm mcp` reads it. */
export function loadBridgeConfig(env: NodeJS.ProcessEnv = process.env): BridgeConfig {
  const url = signetUrl(env.SIGNET_URL || DEFAULT_SIGNET_URL);
  const mcpPort = port(env.SIGNET_MCP_PORT);
  let credentials: SignetCredentials;
  try {
    credentials = credentialsFromEnv(env);
  } catch (error) {
    if (error instanceof CredentialsError) throw new BridgeConfigError(error.message);
    throw error;
  }
  return { url, credentials, port: mcpPort };
}

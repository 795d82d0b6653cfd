// `pnpm agent`: the example agent against a running `pnpm serve`. SIGNET_URL (default
// http://127.0.0.1:8787); SIGNET_CREDENTIALS (a client's credentials file), or in development
// SIGNET_KEYRING (default .signet/keyring.json) and SIGNET_CLIENT_ID (default: the first client).
import { CredentialsError, credentialsFromEnv } from '@signet/client';
import { runAgent } from './agent.ts';

let credentials: ReturnType<typeof credentialsFromEnv>;
try {
  credentials = credentialsFromEnv();
} catch (error) {
  if (!(error instanceof CredentialsError)) throw error;
  console.error(`signet agent: ${error.message}`);
  process.exit(1);
}
await runAgent({ url: process.env.SIGNET_URL || 'http://127.0.0.1:8787', ...credentials });

// `pnpm agent`: the example agent against a running `pnpm serve`.
// SIGNET_URL (default http://127.0.0.1:8787), SIGNET_KEYRING, SIGNET_CLIENT_ID (default: first).
import { readFileSync } from 'node:fs';
import { keyringFileSchema } from '@signet/server';
import { runAgent } from './agent.ts';

const keyringPath = process.env.SIGNET_KEYRING || '.signet/keyring.json';
const file = keyringFileSchema.parse(JSON.parse(readFileSync(keyringPath, 'utf8')));
const wanted = process.env.SIGNET_CLIENT_ID;
const client = wanted ? file.clients.find((c) => c.client_id === wanted) : file.clients[0];
if (!client) {
  console.error(`signet agent: no client "${wanted}" in ${keyringPath}`);
  process.exit(1);
}
await runAgent({
  url: process.env.SIGNET_URL || 'http://127.0.0.1:8787',
  serverId: file.server_id,
  clientId: client.client_id,
  key: client.keys[0]!,
});

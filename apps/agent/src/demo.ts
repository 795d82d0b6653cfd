// `pnpm demo`: an embedded server on a free port with a fresh development keyring, and the
// example agent calling it over HTTP. Exits 0 when every step behaved as it should.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyringFile } from '@signet/server';
import { loadConfig, startApp } from '@signet/server-app';
import pino from 'pino';
import { runAgent } from './agent.ts';

const dir = join(process.cwd(), '.signet', 'demo');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const keyringPath = join(dir, 'keyring.json');
const keyring = generateKeyringFile({ serverId: 'mcp-server-001', clientIds: ['demo-agent'] });
writeFileSync(keyringPath, JSON.stringify(keyring, null, 2), { mode: 0o600 });

const config = loadConfig({
  ...process.env,
  SIGNET_PORT: '0',
  SIGNET_HOST: '127.0.0.1',
  SIGNET_KEYRING: keyringPath,
  SIGNET_STORE: process.env.SIGNET_STORE ?? `sqlite:${join(dir, 'signet.db')}`,
});
const server = await startApp(config, pino({ level: 'warn' }, pino.destination(2)));
console.log(`signet demo: server listening on ${server.url} (store: ${config.store.kind})`);

let ok = false;
try {
  const client = keyring.clients[0]!;
  const report = await runAgent({
    url: server.url,
    serverId: keyring.server_id,
    clientId: client.client_id,
    key: client.keys[0]!,
  });
  ok =
    report.sum.total === 10.5 &&
    report.progressSeen > 0 &&
    JSON.stringify(report.output) ===
      JSON.stringify({ report: 'quarterly', rows: 42, tags: ['signed', 'async'] }) &&
    report.tampered.reason === 'BAD_SIGNATURE' &&
    report.replayed.reason === 'REPLAYED_NONCE';
  console.log(ok ? 'signet demo: all steps behaved as expected' : 'signet demo: FAILED');
} catch (error) {
  console.error('signet demo failed:', error);
} finally {
  await server.close({ graceMs: 1_000 });
}
process.exit(ok ? 0 : 1);

// `pnpm demo`: an embedded server on a free port with a fresh development keyring, and the
// example agent calling it over HTTP. Exits 0 when every step behaved as it should.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { generateEd25519KeyPair } from '@signet/protocol';
import { generateKeyringFile } from '@signet/server';
import { verifyAuditFolder } from '@signet/server/audit';
import { auditSummary, loadAuditKeys, loadConfig, startApp } from '@signet/server-app';
import pino from 'pino';
import { runAgent } from './agent.ts';

const dir = join(process.cwd(), '.signet', 'demo');
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const keyringPath = join(dir, 'keyring.json');
const keyring = {
  ...generateKeyringFile({ serverId: 'mcp-server-001', clientIds: ['demo-agent'] }),
  // (The server key signs the audit log's checkpoints.)
  server_keys: [
    { kid: 's1', alg: 'ed25519' as const, private_key: generateEd25519KeyPair().privateKey },
  ],
};
const auditFolder = join(dir, 'audit');
writeFileSync(keyringPath, JSON.stringify(keyring, null, 2), { mode: 0o600 });

const config = loadConfig({
  ...process.env,
  SIGNET_PORT: '0',
  SIGNET_HOST: '127.0.0.1',
  SIGNET_KEYRING: keyringPath,
  SIGNET_STORE: process.env.SIGNET_STORE ?? `sqlite:${join(dir, 'signet.db')}`,
  SIGNET_AUDIT: auditFolder,
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
// Every call above, and every change of the job, is in the audit log, closed by a signed
// checkpoint at shutdown: check it as anyone holding the public keys could.
const audit = verifyAuditFolder(auditFolder, loadAuditKeys(keyringPath));
if (audit.ok) {
  console.log(`signet demo: audit log verified: ${auditSummary(audit)}`);
  const shown = (path: string) => relative(process.cwd(), path);
  console.log(`  (pnpm audit-log verify ${shown(auditFolder)} --keys ${shown(keyringPath)})`);
} else {
  ok = false;
  console.error(`signet demo: audit log FAILED: ${JSON.stringify(audit.failure)}`);
}
process.exit(ok ? 0 : 1);

import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ed25519PublicKey, ed25519PublicKeyOf } from '@signet/protocol';
import type { AuditKeys, AuditReport } from '@signet/server/audit';

// What `pnpm audit-log verify` and `pnpm demo` share: the keys a log is checked with, read from
// a keyring or a file of public keys, and the one-line summary of a log that verified.

interface KeyFile {
  server_keys?: { kid: string; private_key?: string; public_key?: string }[];
  clients?: { client_id: string; keys: { kid: string; alg?: string; public_key?: string }[] }[];
}

/**
 * Public keys from a keyring (server private keys give their public halves) or from a file of
 * public keys only, `{server_keys: [{kid, public_key}], clients: [{client_id, keys}]}`.
 */
export function loadAuditKeys(path: string): AuditKeys {
  const file = JSON.parse(readFileSync(path, 'utf8')) as KeyFile;
  const serverKeys = (file.server_keys ?? []).map((k) => ({
    kid: k.kid,
    publicKey: ed25519PublicKey(
      k.private_key ? ed25519PublicKeyOf(k.private_key) : (k.public_key ?? ''),
    ),
  }));
  const clients = new Map<string, KeyObject>();
  for (const client of file.clients ?? []) {
    for (const key of client.keys) {
      if (key.alg !== 'ed25519' || !key.public_key) continue;
      clients.set(`${client.client_id}\n${key.kid}`, ed25519PublicKey(key.public_key));
    }
  }
  return { serverKeys, clientKeys: (clientId, kid) => clients.get(`${clientId}\n${kid}`) };
}

/** `N chains, N entries, N clients, FIRST .. LAST, N unanchored[; notes]` of a verified log. */
export function auditSummary(report: AuditReport): string {
  const clients = new Set(report.chains.flatMap((c) => c.clients));
  const entries = report.chains.reduce((n, c) => n + c.entries, 0);
  const unanchored = report.chains.reduce((n, c) => n + c.unanchored, 0);
  const unsigned = report.chains.reduce((n, c) => n + c.unsignedCheckpoints, 0);
  const times = report.chains.flatMap((c) =>
    c.firstAt === undefined ? [] : [c.firstAt, c.lastAt!],
  );
  const span = times.length
    ? `${new Date(Math.min(...times)).toISOString()} .. ${new Date(Math.max(...times)).toISOString()}`
    : 'empty';
  const notes = [
    unsigned > 0 ? `checkpoints unsigned: ${unsigned}` : '',
    ...report.chains.flatMap((c) => (c.torn ? [`torn last line ignored: ${c.torn}`] : [])),
  ].filter(Boolean);
  return `${report.chains.length} chains, ${entries} entries, ${clients.size} clients, ${span}, ${unanchored} unanchored${notes.length ? `; ${notes.join('; ')}` : ''}`;
}

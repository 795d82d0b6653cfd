import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ed25519PublicKey, ed25519PublicKeyOf } from '@signet/protocol';
// The audit module is internal to @signet/server until it is wired into the request path, so
// this tool reaches it by path rather than through a published subpath.
import {
  type AuditEntry,
  type AuditKeys,
  listChains,
  readLines,
  verifyAuditFolder,
} from '@signet/server/audit';

// `pnpm audit-log verify|show` (DESIGN 1.8): checks or reads an audit folder. Exit 0 when the
// log verifies; 1 naming the first bad line; 2 for bad usage or an unreadable key file.

const USAGE = `usage: audit-log verify [FOLDER] [--keys FILE]
       audit-log show [FOLDER] [--client ID] [--tool NAME] [--outcome ok|REASON] [--since ISO] [--until ISO]
FOLDER defaults to SIGNET_AUDIT or .signet/audit/; FILE to SIGNET_KEYRING or .signet/keyring.json`;

function usage(message: string): never {
  console.error(`audit-log: ${message}\n${USAGE}`);
  process.exit(2);
}

/** FOLDER and --name value options; anything else is a usage error. */
function parseArgs(args: string[], names: readonly string[]) {
  const options = new Map<string, string>();
  let folder: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith('--')) {
      const name = arg.slice(2);
      const value = args[++i];
      if (!names.includes(name) || value === undefined) usage(`bad option ${arg}`);
      options.set(name, value);
    } else if (folder === undefined) {
      folder = arg;
    } else {
      usage(`unexpected ${arg}`);
    }
  }
  const env = process.env.SIGNET_AUDIT;
  return { folder: folder ?? (env && env !== 'off' ? env : '.signet/audit/'), options };
}

interface KeyFile {
  server_keys?: { kid: string; private_key?: string; public_key?: string }[];
  clients?: { client_id: string; keys: { kid: string; alg?: string; public_key?: string }[] }[];
}

/**
 * Public keys from a keyring (server private keys give their public halves) or from a file of
 * public keys only, `{server_keys: [{kid, public_key}], clients: [{client_id, keys}]}`.
 */
function loadAuditKeys(path: string): AuditKeys {
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

function verifyCommand(args: string[]): void {
  const { folder, options } = parseArgs(args, ['keys']);
  if (!existsSync(folder)) usage(`no audit folder ${folder}`);
  const keysPath = options.get('keys') || process.env.SIGNET_KEYRING || '.signet/keyring.json';
  let keys: AuditKeys = { serverKeys: [], clientKeys: () => undefined };
  if (options.has('keys') || existsSync(keysPath)) {
    try {
      keys = loadAuditKeys(keysPath);
    } catch (error) {
      usage(`cannot read keys from ${keysPath}: ${(error as Error).message}`);
    }
  }
  const report = verifyAuditFolder(folder, keys);
  if (!report.ok) {
    const f = report.failure!;
    console.error(`audit-log: FAILED ${f.file}:${f.line}: ${f.reason}`);
    process.exit(1);
  }
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
  console.log(
    `audit-log: OK ${report.chains.length} chains, ${entries} entries, ${clients.size} clients, ${span}, ${unanchored} unanchored${notes.length ? `; ${notes.join('; ')}` : ''}`,
  );
}

function showCommand(args: string[]): void {
  const { folder, options } = parseArgs(args, ['client', 'tool', 'outcome', 'since', 'until']);
  if (!existsSync(folder)) usage(`no audit folder ${folder}`);
  const time = (name: string): number | undefined => {
    const text = options.get(name);
    if (text === undefined) return undefined;
    const ms = Date.parse(text);
    if (Number.isNaN(ms)) usage(`--${name} is not an ISO time`);
    return ms;
  };
  const since = time('since');
  const until = time('until');
  for (const [chain, files] of listChains(folder)) {
    for (const line of files.flatMap(readLines)) {
      let entry: AuditEntry;
      try {
        entry = JSON.parse(line.text) as AuditEntry;
      } catch {
        continue; // a torn line: `verify` reports it
      }
      if (entry.type === 'checkpoint') continue;
      const outcome =
        entry.type === 'call' ? [entry.outcome.status, entry.outcome.reason] : [entry.status];
      if (options.has('client') && entry.client_id !== options.get('client')) continue;
      if (options.has('tool') && entry.tool !== options.get('tool')) continue;
      if (options.has('outcome') && !outcome.includes(options.get('outcome'))) continue;
      if (since !== undefined && entry.at < since) continue;
      if (until !== undefined && entry.at > until) continue;
      const what =
        entry.type === 'call'
          ? `call ${entry.tool} ${outcome.filter(Boolean).join(' ')} request ${entry.request_id}${entry.envelope ? ' (ed25519)' : ''}`
          : `job  ${entry.tool} ${entry.status} job ${entry.job_id} #${entry.job_seq}`;
      console.log(
        `${new Date(entry.at).toISOString()} ${chain.slice(0, 8)}:${entry.seq} ${entry.client_id} ${what}`,
      );
    }
  }
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'verify') verifyCommand(rest);
else if (command === 'show') showCommand(rest);
else usage(command === undefined ? 'no command' : `unknown command ${command}`);

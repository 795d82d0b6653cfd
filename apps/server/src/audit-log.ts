import { existsSync } from 'node:fs';
import {
  type AuditEntry,
  type AuditKeys,
  listChains,
  readLines,
  verifyAuditFolder,
} from '@signet/server/audit';
import { auditSummary, loadAuditKeys } from './audit-report.ts';

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
  console.log(`audit-log: OK ${auditSummary(report)}`);
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

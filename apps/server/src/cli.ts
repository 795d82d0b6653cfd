import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type CredentialsFile,
  credentialsOf,
  ed25519PublicKeyOf,
  generateEd25519KeyPair,
  type KeyringFile,
  keyringFileSchema,
} from '@signet/protocol';
import { generateKeyringFile, Keyring, KeyringError } from '@signet/server';
import { redactUrl, startSignetWorker } from '@signet/server/redis';
import pino from 'pino';
import { startApp } from './app.ts';
import { type Config, ConfigError, loadConfig } from './config.ts';
import { openKeyFileWarning } from './key-file-mode.ts';
import { tools } from './tools/contracts.ts';
import { createHandlers } from './tools/handlers.ts';

const USAGE = `usage: signet <command>
  serve    run the server (configured by SIGNET_* variables; see README)
  worker   run job handlers only, for a Redis store
  keygen   write a keyring with fresh random secrets, and each client's credentials file
           beside it (credentials/<client>.json): keygen [--out PATH] [--server-id ID]
           [--client ID ...] [--force]
           keygen --ed25519 --client ID [--out PATH] [--server-id ID]: adds that client with a
           new Ed25519 key pair to the keyring (creating it, and a server key, if need be) and
           writes its credentials file`;

function fail(message: string): never {
  console.error(`signet: ${message}`);
  process.exit(1);
}

function keygen(args: string[]): void {
  let out = process.env.SIGNET_KEYRING || '.signet/keyring.json';
  let serverId = 'mcp-server-001';
  const clients: string[] = [];
  let force = false;
  let ed25519 = false;
  let serverIdGiven = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => args[++i] ?? fail(`${arg} needs a value`);
    if (arg === '--out') out = value();
    else if (arg === '--server-id') {
      serverId = value();
      serverIdGiven = true;
    } else if (arg === '--client') clients.push(value());
    else if (arg === '--force') force = true;
    else if (arg === '--ed25519') ed25519 = true;
    else fail(`unknown keygen option ${arg}\n${USAGE}`);
  }
  if (ed25519) {
    if (clients.length !== 1) fail('--ed25519 takes exactly one --client ID');
    keygenEd25519(out, clients[0]!, serverIdGiven ? serverId : undefined, force);
    return;
  }
  if (existsSync(out) && !force) fail(`${out} exists; pass --force to replace it`);
  const file = generateKeyringFile({
    serverId,
    clientIds: clients.length > 0 ? clients : ['client-001'],
  });
  mkdirSync(dirname(out), { recursive: true });
  writePrivate(out, file);
  console.log(
    `wrote ${out} for server ${serverId}: clients ${file.clients.map((c) => c.client_id).join(', ')}`,
  );
  // One credentials file per client: what an agent or `pnpm mcp` needs, and no other's key.
  const folder = join(dirname(out), 'credentials');
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  for (const client of file.clients) {
    const path = join(folder, `${client.client_id}.json`);
    writePrivate(path, credentialsOf(file, client.client_id));
    console.log(`wrote ${path} (SIGNET_CREDENTIALS for ${client.client_id})`);
  }
}

/**
 * Writes a JSON file readable by its owner only, whole or not at all: a new file, 0600, renamed
 * over the old one, so a file that was there (with `--force`) leaves neither its content nor its
 * mode. (writeFileSync's `mode` only applies to a file it creates, hence the chmod: a temporary
 * file left by a crash would keep its own.)
 */
function writePrivate(path: string, value: unknown): void {
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
}

/**
 * Warns of a keyring that other local users can read, once started (a start that fails says
 * only why, in one line).
 */
function warnIfOpen(path: string, logger: pino.Logger): void {
  const warning = openKeyFileWarning(path);
  if (warning) logger.warn({ keyring: path }, warning);
}

/**
 * `keygen --ed25519 --client ID`: a new Ed25519 key pair for the client. The keyring (created if
 * missing, or with --force) gets only the public key, and a server key if it has none; the
 * client's credentials file gets the private key and the server's public keys, to pin.
 */
function keygenEd25519(
  out: string,
  clientId: string,
  serverId: string | undefined,
  force: boolean,
): void {
  let file: KeyringFile;
  if (existsSync(out) && !force) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(out, 'utf8'));
    } catch {
      fail(`${out} is not valid JSON`);
    }
    const parsed = keyringFileSchema.safeParse(json);
    if (!parsed.success) fail(`${out} is not a valid keyring; fix it or pass --force`);
    file = parsed.data;
    if (serverId !== undefined && serverId !== file.server_id) {
      fail(`${out} is the keyring of server ${file.server_id}, not ${serverId}`);
    }
    if (file.clients.some((c) => c.client_id === clientId)) {
      fail(`client ${clientId} is already in ${out}`);
    }
  } else {
    file = {
      server_id: serverId ?? 'mcp-server-001',
      clients: [] as unknown as KeyringFile['clients'],
    };
  }
  if (!file.server_keys || file.server_keys.length === 0) {
    file.server_keys = [
      { kid: 's1', alg: 'ed25519', private_key: generateEd25519KeyPair().privateKey },
    ];
    console.log(`added server key s1 to ${out}`);
  }
  const pair = generateEd25519KeyPair();
  file.clients.push({
    client_id: clientId,
    tools: ['*'],
    keys: [{ kid: 'e1', alg: 'ed25519', public_key: pair.publicKey }],
  });
  Keyring.parse(file); // (what the server will load: refuse to write anything it would not)
  mkdirSync(dirname(out), { recursive: true });
  writePrivate(out, file);
  console.log(`wrote ${out} for server ${file.server_id}: added client ${clientId} (Ed25519)`);
  const credentials: CredentialsFile = {
    server_id: file.server_id,
    client_id: clientId,
    key: { kid: 'e1', alg: 'ed25519', private_key: pair.privateKey },
    server_keys: file.server_keys.map((k) => ({
      kid: k.kid,
      public_key: ed25519PublicKeyOf(k.private_key),
    })),
  };
  const folder = join(dirname(out), 'credentials');
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const path = join(folder, `${clientId}.json`);
  writePrivate(path, credentials);
  console.log(`wrote ${path} (SIGNET_CREDENTIALS for ${clientId})`);
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const logger = pino({ level: config.logLevel }, pino.destination(2));
  const starting = startApp(config, logger);
  // (From the start: a signal that comes while the server starts closes it once it has started,
  // so what it did meanwhile, e.g. its audit entries of jobs recovered at open, is not lost.)
  onShutdown(config.graceMs, logger, (graceMs) => starting.then((s) => s.close({ graceMs })));
  const server = await starting;
  warnIfOpen(config.keyringPath, logger);
  process.on('SIGHUP', () => server.reloadKeyring());
  console.log(
    `signet: listening on ${server.url} ` +
      `(store ${config.store.kind}, role ${config.role}, http ${config.httpFront})`,
  );
  if (server.metrics) console.log(`signet: metrics on ${server.metrics.url}`);
}

async function worker(): Promise<void> {
  const config = loadConfig();
  if (config.store.kind !== 'redis') {
    fail('`worker` takes jobs from a shared Redis: set SIGNET_STORE=redis://host:port');
  }
  const logger = pino({ level: config.logLevel }, pino.destination(2));
  const starting = startSignetWorker({
    contracts: tools,
    handlers: createHandlers(),
    url: config.store.url,
    logger,
    concurrency: config.concurrency,
    retentionMs: config.retentionMs,
    lockMs: config.lockMs,
    namespace: config.namespace,
    maxOutputBytes: config.maxOutputBytes,
    ...workerAudit(config, logger),
  });
  // (From the start, as for `serve`.)
  onShutdown(config.graceMs, logger, (graceMs) => starting.then((w) => w.close({ graceMs })));
  await starting;
  // (The worker reads the keyring for its audit log's server key, if it has one.)
  if (config.audit !== 'off') warnIfOpen(config.keyringPath, logger);
  console.log(
    `signet: worker ready (queue ${config.namespace}-jobs on ${redactUrl(config.store.url)}, concurrency ${config.concurrency})`,
  );
}

/**
 * A worker records the job changes it makes in an audit log of its own, its checkpoints signed
 * with the server key of SIGNET_KEYRING; without that file they are unsigned (and it says so).
 */
function workerAudit(config: Config, logger: pino.Logger) {
  if (config.audit === 'off') return {};
  if (!existsSync(config.keyringPath)) {
    logger.warn(
      `no keyring at ${config.keyringPath}: the worker's audit checkpoints will be unsigned`,
    );
    return { audit: config.audit };
  }
  const serverKey = Keyring.load(config.keyringPath).signingKey;
  return { audit: { ...config.audit, ...(serverKey ? { serverKey } : {}) } };
}

/** SIGINT / SIGTERM: stop taking work, let running jobs finish within the grace period, exit. */
function onShutdown(
  graceMs: number,
  logger: pino.Logger,
  close: (graceMs: number) => Promise<void>,
) {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`signet: ${signal}, shutting down (grace ${graceMs} ms)`);
    close(graceMs).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function main(): Promise<void> {
  const [command, ...args] = process.argv.slice(2);
  switch (command) {
    case 'serve':
      return serve();
    case 'keygen':
      return keygen(args);
    case 'worker':
      return worker();
    default:
      fail(USAGE);
  }
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof KeyringError) fail(error.message);
  if (error instanceof Error && /Redis|database|audit log/.test(error.message)) fail(error.message);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    fail(`cannot listen: ${code} (${(error as Error).message})`);
  }
  console.error(error);
  process.exit(1);
});

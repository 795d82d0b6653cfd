import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { credentialsOf } from '@signet/protocol';
import { generateKeyringFile, KeyringError } from '@signet/server';
import { redactUrl, startSignetWorker } from '@signet/server/redis';
import pino from 'pino';
import { startApp } from './app.ts';
import { ConfigError, loadConfig } from './config.ts';
import { tools } from './tools/contracts.ts';
import { createHandlers } from './tools/handlers.ts';

const USAGE = `usage: signet <command>
  serve    run the server (configured by SIGNET_* variables; see README)
  worker   run job handlers only, for a Redis store
  keygen   write a keyring with fresh random secrets, and each client's credentials file
           beside it (credentials/<client>.json): keygen [--out PATH] [--server-id ID]
           [--client ID ...] [--force]`;

function fail(message: string): never {
  console.error(`signet: ${message}`);
  process.exit(1);
}

function keygen(args: string[]): void {
  let out = process.env.SIGNET_KEYRING || '.signet/keyring.json';
  let serverId = 'mcp-server-001';
  const clients: string[] = [];
  let force = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => args[++i] ?? fail(`${arg} needs a value`);
    if (arg === '--out') out = value();
    else if (arg === '--server-id') serverId = value();
    else if (arg === '--client') clients.push(value());
    else if (arg === '--force') force = true;
    else fail(`unknown keygen option ${arg}\n${USAGE}`);
  }
  if (existsSync(out) && !force) fail(`${out} exists; pass --force to replace it`);
  const file = generateKeyringFile({
    serverId,
    clientIds: clients.length > 0 ? clients : ['client-001'],
  });
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  console.log(
    `wrote ${out} for server ${serverId}: clients ${file.clients.map((c) => c.client_id).join(', ')}`,
  );
  // One credentials file per client: what an agent or `pnpm mcp` needs, and no other's key.
  const folder = join(dirname(out), 'credentials');
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  for (const client of file.clients) {
    const path = join(folder, `${client.client_id}.json`);
    const credentials = credentialsOf(file, client.client_id);
    writeFileSync(path, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
    console.log(`wrote ${path} (SIGNET_CREDENTIALS for ${client.client_id})`);
  }
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const logger = pino({ level: config.logLevel }, pino.destination(2));
  const server = await startApp(config, logger);
  console.log(
    `signet: listening on ${server.url} ` +
      `(store ${config.store.kind}, role ${config.role}, http ${config.httpFront})`,
  );

  process.on('SIGHUP', () => server.reloadKeyring());
  onShutdown(config.graceMs, logger, (graceMs) => server.close({ graceMs }));
}

async function worker(): Promise<void> {
  const config = loadConfig();
  if (config.store.kind !== 'redis') {
    fail('`worker` takes jobs from a shared Redis: set SIGNET_STORE=redis://host:port');
  }
  const logger = pino({ level: config.logLevel }, pino.destination(2));
  const running = await startSignetWorker({
    contracts: tools,
    handlers: createHandlers(),
    url: config.store.url,
    logger,
    concurrency: config.concurrency,
    retentionMs: config.retentionMs,
    lockMs: config.lockMs,
    namespace: config.namespace,
  });
  console.log(
    `signet: worker ready (queue ${config.namespace}-jobs on ${redactUrl(config.store.url)}, concurrency ${config.concurrency})`,
  );
  onShutdown(config.graceMs, logger, (graceMs) => running.close({ graceMs }));
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
  if (error instanceof Error && /Redis|database/.test(error.message)) fail(error.message);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    fail(`cannot listen: ${code} (${(error as Error).message})`);
  }
  console.error(error);
  process.exit(1);
});

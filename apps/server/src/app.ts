import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { tools } from '@signet/contracts';
import {
  type Backend,
  type LocalStore,
  MemoryStore,
  type RunningSignetServer,
  redisBackend,
  SqliteStore,
  startSignetServer,
  watchKeyring,
} from '@signet/server';
import type { Logger } from 'pino';
import { type Config, ConfigError } from './config.ts';
import { createHandlers } from './tools/index.ts';

export type AppServer = RunningSignetServer<typeof tools> & {
  /** Reads the keyring file again (what SIGHUP does); false if it was refused. */
  reloadKeyring(): boolean;
};

export function openStore(
  config: Pick<Config, 'store' | 'role' | 'lockMs' | 'namespace'>,
): LocalStore | Backend {
  const { store } = config;
  switch (store.kind) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite':
      return openSqlite(store.path);
    case 'redis':
      return redisBackend({
        url: store.url,
        runHandlers: config.role === 'all',
        lockMs: config.lockMs,
        namespace: config.namespace,
      });
  }
}

function openSqlite(path: string): LocalStore {
  try {
    mkdirSync(dirname(path), { recursive: true });
    return new SqliteStore(path);
  } catch (error) {
    // e.g. an unwritable directory, or a file that is not a database: a one-line reason.
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(
      `cannot open the SQLite store at ${path}: ${reason.replace(/\s+/g, ' ')}`,
    );
  }
}

/** Starts the Signet server that `pnpm serve` runs. */
export async function startApp(config: Config, logger: Logger): Promise<AppServer> {
  const keyring = watchKeyring(config.keyringPath, { logger });
  let store: LocalStore | Backend | undefined;
  try {
    store = openStore(config);
    const server = await startSignetServer({
      contracts: tools,
      handlers: createHandlers(config),
      keyring: keyring.current,
      store,
      logger,
      host: config.host,
      port: config.port,
      windowMs: config.windowMs,
      maxBodyBytes: config.maxBodyBytes,
      concurrency: config.concurrency,
      retentionMs: config.retentionMs,
      ...(config.rateLimit ? { rateLimit: config.rateLimit } : {}),
    });
    return {
      ...server,
      reloadKeyring: keyring.reload,
      close: async (opts) => {
        keyring.close();
        await server.close(opts);
      },
    };
  } catch (error) {
    keyring.close();
    if (store && 'claim' in store) store.close();
    throw error;
  }
}

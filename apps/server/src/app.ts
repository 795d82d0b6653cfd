import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { tools } from '@signet/contracts';
import {
  Keyring,
  type LocalStore,
  MemoryStore,
  type RunningSignetServer,
  startSignetServer,
} from '@signet/server';
import type { Logger } from 'pino';
import { type Config, ConfigError, type StoreConfig } from './config.ts';
import { createHandlers } from './tools/index.ts';

export type AppServer = RunningSignetServer<typeof tools>;

export function openStore(store: StoreConfig): LocalStore {
  switch (store.kind) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite':
      mkdirSync(dirname(store.path), { recursive: true });
      return openSqlite(store.path);
    case 'redis':
      throw new ConfigError('redis stores are not supported by this build yet');
  }
}

// Replaced once the SQLite store lands; until then an explicit error, never a silent fallback.
function openSqlite(_path: string): LocalStore {
  throw new ConfigError(
    'sqlite stores are not supported by this build yet; use SIGNET_STORE=memory:',
  );
}

/** Starts the Signet server that `pnpm serve` runs. */
export async function startApp(config: Config, logger: Logger): Promise<AppServer> {
  const keyring = Keyring.load(config.keyringPath);
  const store = openStore(config.store);
  try {
    return await startSignetServer({
      contracts: tools,
      handlers: createHandlers(config),
      keyring: () => keyring,
      store,
      logger,
      host: config.host,
      port: config.port,
      windowMs: config.windowMs,
      maxBodyBytes: config.maxBodyBytes,
      concurrency: config.concurrency,
      retentionMs: config.retentionMs,
    });
  } catch (error) {
    store.close();
    throw error;
  }
}

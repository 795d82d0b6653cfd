import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  type Backend,
  MemoryStore,
  type RunningSignetServer,
  type SignetServerOptions,
  startSignetServer,
  watchKeyring,
} from '@signet/server';
import { redisBackend } from '@signet/server/redis';
import { SqliteStore } from '@signet/server/sqlite';
import type { Logger } from 'pino';
import { type Config, ConfigError } from './config.ts';
import { tools } from './tools/contracts.ts';
import { createHandlers } from './tools/handlers.ts';

export type AppServer = RunningSignetServer<typeof tools> & {
  /** Reads the keyring file again (what SIGHUP does); false if it was refused. */
  reloadKeyring(): boolean;
};

export function openStore(
  config: Pick<Config, 'store' | 'role' | 'lockMs' | 'namespace'>,
): Backend {
  const { store } = config;
  switch (store.kind) {
    case 'memory':
      return new MemoryStore();
    case 'sqlite':
      return sqliteStore(store.path);
    case 'redis':
      return redisBackend({
        url: store.url,
        runHandlers: config.role === 'all',
        lockMs: config.lockMs,
        namespace: config.namespace,
      });
  }
}

/** The SQLite store, whose failure to open is a one-line reason. */
function sqliteStore(path: string): Backend {
  const store = new SqliteStore(path);
  return {
    open: async (ctx) => {
      try {
        mkdirSync(dirname(path), { recursive: true });
        return await store.open(ctx);
      } catch (error) {
        // e.g. an unwritable directory, a file that is not a database, or one in use.
        const reason = error instanceof Error ? error.message : String(error);
        throw new ConfigError(
          `cannot open the SQLite store at ${path}: ${reason.replace(/\s+/g, ' ')}`,
        );
      }
    },
  };
}

/** `SIGNET_METRICS` as the server's option: its own listener is on 127.0.0.1 only. */
function metricsOption(metrics: Config['metrics']): Pick<SignetServerOptions<never>, 'metrics'> {
  if (metrics === 'off') return {};
  if (metrics === 'on') return { metrics: true };
  return { metrics: { listen: { port: metrics.port, host: '127.0.0.1' } } };
}

/** Starts the Signet server that `pnpm serve` runs. */
export async function startApp(config: Config, logger: Logger): Promise<AppServer> {
  const keyring = watchKeyring(config.keyringPath, { logger });
  try {
    const server = await startSignetServer({
      contracts: tools,
      handlers: createHandlers(),
      keyring: keyring.current,
      store: openStore(config),
      logger,
      host: config.host,
      port: config.port,
      httpFront: config.httpFront,
      httpLimits: config.httpLimits,
      windowMs: config.windowMs,
      maxBodyBytes: config.maxBodyBytes,
      maxOutputBytes: config.maxOutputBytes,
      concurrency: config.concurrency,
      retentionMs: config.retentionMs,
      ...(config.rateLimit ? { rateLimit: config.rateLimit } : {}),
      clientLimits: config.clientLimits,
      ...metricsOption(config.metrics),
      ...(config.audit === 'off' ? {} : { audit: config.audit }),
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
    // (A store is opened by the server, which closes it again if it fails to start.)
    keyring.close();
    throw error;
  }
}

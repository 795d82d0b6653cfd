#!/usr/bin/env node
// `pnpm mcp` / `signet-mcp`: an MCP server relaying to a Signet server. stdio by default (stdout
// carries JSON-RPC only, everything else goes to stderr); Streamable HTTP with SIGNET_MCP_PORT.
import { createSignetBridge } from './bridge.ts';
import { BridgeConfigError, loadBridgeConfig } from './config.ts';
import { serveHttp } from './http.ts';
import { failureMessage } from './outcome.ts';
import { serveStdio } from './stdio.ts';

const log = (message: string) => process.stderr.write(`signet-mcp: ${message}\n`);

function fail(message: string): never {
  log(message);
  process.exit(1);
}

async function main(): Promise<void> {
  let config: ReturnType<typeof loadBridgeConfig>;
  try {
    config = loadBridgeConfig();
  } catch (error) {
    if (error instanceof BridgeConfigError) fail(error.message);
    throw error;
  }
  const bridge = createSignetBridge({ url: config.url, credentials: config.credentials, log });

  // Discovery at start only reports: the server may come up later, and a refused key is then
  // an MCP error on every call, which the host shows.
  bridge.discover().then(
    (found) =>
      log(
        `${found.tools.length} tools of ${found.serverId} at ${config.url} ` +
          `(${found.tools.map((tool) => tool.name).join(', ')}; ${found.fingerprint})`,
      ),
    (error: unknown) => log(failureMessage('cannot list the tools yet', error, config.url)),
  );

  let close: () => Promise<void>;
  if (config.port === undefined) {
    const stdio = serveStdio(bridge, { onerror: (error) => log(`stdio: ${error.message}`) });
    close = () => stdio.close();
    // The host closed stdin: abort what runs, let the cancel_job calls go out, exit.
    stdio.ended.then(() => shutdown('stdin closed'));
  } else {
    const http = await serveHttp(bridge, {
      port: config.port,
      onerror: (error) => log(`http: ${error.message}`),
    });
    close = () => http.close();
    log(`listening on ${http.url} (stateless Streamable HTTP, relaying to ${config.url})`);
  }

  let stopping = false;
  function shutdown(why: string) {
    if (stopping) return;
    stopping = true;
    log(`${why}, shutting down`);
    close()
      .then(() => bridge.drain(5_000))
      .then(
        () => process.exit(0),
        (error: unknown) => fail(`shutdown failed: ${String(error)}`),
      );
  }
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));

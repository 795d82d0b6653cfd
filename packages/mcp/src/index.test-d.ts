// Type-level tests of the package's public API: what embedding the bridge looks like.
import type { Server } from '@modelcontextprotocol/server';
import { credentialsFromEnv, type SignetCredentials } from '@signet/client';
import { describe, expectTypeOf, it } from 'vitest';
import {
  type BridgeConfig,
  type BridgeDiscovery,
  type BridgeTool,
  createSignetBridge,
  type HttpBridge,
  loadBridgeConfig,
  type SignetBridge,
  type StdioBridge,
  serveHttp,
  serveStdio,
} from './index.ts';

const credentials: SignetCredentials = {
  serverId: 'mcp-server-001',
  clientId: 'client-001',
  key: { kid: 'k1', secret: 'x'.repeat(32) },
};

describe('@signet/mcp', () => {
  it('builds a bridge from a URL and one client’s credentials', () => {
    const bridge = createSignetBridge({ url: 'http://127.0.0.1:8787', credentials });
    expectTypeOf(bridge).toEqualTypeOf<SignetBridge>();
    expectTypeOf(createSignetBridge)
      .parameter(0)
      .toExtend<{ url: string; credentials: SignetCredentials }>();
    // What credentialsFromEnv reads is what the bridge takes.
    createSignetBridge({ url: 'http://127.0.0.1:8787', credentials: credentialsFromEnv() });
    // @ts-expect-error the credentials are required
    createSignetBridge({ url: 'http://127.0.0.1:8787' });
    // @ts-expect-error a limit is a number
    createSignetBridge({ url: 'http://x', credentials, maxConcurrentCalls: '8' });
  });

  it('hands the SDK an MCP server, and says what it discovered', () => {
    const bridge = createSignetBridge({ url: 'http://127.0.0.1:8787', credentials });
    expectTypeOf(bridge.createServer()).toEqualTypeOf<Server>();
    expectTypeOf(bridge.discover()).toEqualTypeOf<Promise<BridgeDiscovery>>();
    expectTypeOf<BridgeDiscovery['tools']>().toEqualTypeOf<BridgeTool[]>();
    // Only user tools and jobs reach a host: never the built-in job control.
    expectTypeOf<BridgeTool['kind']>().toEqualTypeOf<'tool' | 'job'>();
    expectTypeOf(bridge.drain).toEqualTypeOf<(timeoutMs?: number) => Promise<void>>();
    // @ts-expect-error read-only
    bridge.url = 'http://elsewhere';
  });

  it('serves over stdio and over HTTP', () => {
    const bridge = createSignetBridge({ url: 'http://127.0.0.1:8787', credentials });
    expectTypeOf(serveStdio(bridge)).toEqualTypeOf<StdioBridge>();
    expectTypeOf(serveStdio(bridge).ended).toEqualTypeOf<Promise<void>>();
    expectTypeOf(serveHttp(bridge, { port: 0 })).toEqualTypeOf<Promise<HttpBridge>>();
    expectTypeOf<HttpBridge['url']>().toEqualTypeOf<string>();
    // @ts-expect-error the port is a number
    serveHttp(bridge, { port: '0' });
  });

  it('reads its configuration from the environment', () => {
    expectTypeOf(loadBridgeConfig).returns.toEqualTypeOf<BridgeConfig>();
    expectTypeOf<BridgeConfig['port']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<BridgeConfig['credentials']>().toEqualTypeOf<SignetCredentials>();
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsOf } from '@signet/protocol';
import { generateKeyringFile } from '@signet/server';
import { afterAll, describe, expect, it } from 'vitest';
import { BridgeConfigError, DEFAULT_SIGNET_URL, loadBridgeConfig } from './config.ts';

const keyring = generateKeyringFile({ serverId: 'srv', clientIds: ['a', 'b'] });
const dir = mkdtempSync(join(tmpdir(), 'signet-mcp-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const keyringPath = join(dir, 'keyring.json');
writeFileSync(keyringPath, JSON.stringify(keyring), { mode: 0o600 });
const credentialsPath = join(dir, 'credentials.json');
writeFileSync(credentialsPath, JSON.stringify(credentialsOf(keyring, 'b')), { mode: 0o600 });

describe('loadBridgeConfig', () => {
  it('reads SIGNET_URL (default 127.0.0.1:8787), the credentials, and SIGNET_MCP_PORT', () => {
    expect(loadBridgeConfig({ SIGNET_CREDENTIALS: credentialsPath })).toEqual({
      url: DEFAULT_SIGNET_URL,
      credentials: { serverId: 'srv', clientId: 'b', key: keyring.clients[1]!.keys[0] },
      port: undefined,
    });
    const config = loadBridgeConfig({
      SIGNET_URL: 'https://signet.example:8443/base/',
      SIGNET_KEYRING: keyringPath,
      SIGNET_CLIENT_ID: 'a',
      SIGNET_MCP_PORT: '0',
    });
    expect(config).toMatchObject({
      url: 'https://signet.example:8443/base',
      credentials: { clientId: 'a' },
      port: 0,
    });
  });

  it('refuses bad configuration with a one-line reason', () => {
    const bad = [
      { SIGNET_CREDENTIALS: credentialsPath, SIGNET_URL: 'not a url' },
      { SIGNET_CREDENTIALS: credentialsPath, SIGNET_URL: 'file:///etc/passwd' },
      { SIGNET_CREDENTIALS: credentialsPath, SIGNET_URL: 'http://u:p@host' },
      { SIGNET_CREDENTIALS: credentialsPath, SIGNET_MCP_PORT: '65536' },
      { SIGNET_CREDENTIALS: credentialsPath, SIGNET_MCP_PORT: '-1' },
      { SIGNET_CREDENTIALS: join(dir, 'no-such-credentials.json') },
      { SIGNET_KEYRING: keyringPath, SIGNET_CLIENT_ID: 'nobody' },
    ];
    for (const env of bad) {
      let error: unknown;
      try {
        loadBridgeConfig(env);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(env)).toBeInstanceOf(BridgeConfigError);
      expect((error as Error).message).not.toMatch(/\n/);
    }
  });
});

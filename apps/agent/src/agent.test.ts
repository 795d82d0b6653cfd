import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyringFile } from '@signet/server';
import { type AppServer, loadConfig, startApp } from '@signet/server-app';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAgent } from './agent.ts';
import { renderProgress } from './progress-bar.ts';

describe('the example agent', () => {
  const keyring = generateKeyringFile({ serverId: 'mcp-server-001', clientIds: ['agent'] });
  let server: AppServer;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signet-agent-'));
    writeFileSync(join(dir, 'keyring.json'), JSON.stringify(keyring));
    server = await startApp(
      loadConfig({
        SIGNET_PORT: '0',
        SIGNET_STORE: `sqlite:${join(dir, 'signet.db')}`,
        SIGNET_KEYRING: join(dir, 'keyring.json'),
        SIGNET_AUDIT: join(dir, 'audit'),
      }),
      pino({ level: 'silent' }),
    );
  });
  afterAll(() => server.close({ graceMs: 0 }));

  it("runs the tutorial's flow and sees the attacks refused", async () => {
    const lines: string[] = [];
    const client = keyring.clients[0]!;
    const report = await runAgent({
      url: server.url,
      serverId: keyring.server_id,
      clientId: client.client_id,
      key: client.keys[0]!,
      out: { write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream,
    });
    expect(report.identity.server_id).toBe('mcp-server-001');
    expect(report.sum).toEqual({ count: 4, total: 10.5 });
    expect(report.output).toEqual({ report: 'quarterly', rows: 42, tags: ['signed', 'async'] });
    // The bar is drawn from progress the server reported: start and each of the 3 seconds.
    expect(report.progressSeen).toBeGreaterThanOrEqual(2);
    expect(lines.join('')).toContain('100% 3/3 s');
    expect(report.tampered).toEqual({ status: 401, reason: 'BAD_SIGNATURE' });
    expect(report.replayed).toEqual({ status: 409, reason: 'REPLAYED_NONCE' });
  }, 20_000);
});

describe('renderProgress', () => {
  it('fills the bar in proportion to the reported progress', () => {
    expect(renderProgress({ current: 1, total: 4 }, 8)).toBe('[##------]  25%');
    expect(renderProgress({ current: 4, total: 4, message: 'done' }, 8)).toBe(
      '[########] 100% done',
    );
  });
  it('shows a count when the total is unknown', () => {
    expect(renderProgress({ current: 3 }, 4)).toBe('[????] 3');
  });
});

// The library side of the metrics (issue 20): `metrics: { registry }` fills the caller's registry;
// `listen` serves them apart from the API; `createSignet` counts calls under any tRPC adapter.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contractSet } from '@signet/contracts';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyring } from './keyring.ts';
import { type RunningSignetServer, startSignetServer } from './server.ts';
import { createSignet, type Signet } from './signet.ts';
import { MemoryStore } from './stores/memory.ts';
import { SqliteStore } from './stores/sqlite.ts';
import { postEnvelope, signedRequest } from './testing/envelopes.ts';
import { HeldJobs, held, jobTestHandlers } from './testing/job-tools.ts';

const SERVER_ID = 'metrics-lib-server';
const SECRET = 'a-test-secret-of-at-least-32-characters';
const tools = contractSet(held);
const alice = { serverId: SERVER_ID, clientId: 'alice', kid: 'k1', secret: SECRET };
const options = () => ({
  contracts: tools,
  handlers: { held: jobTestHandlers(new HeldJobs()).held },
  keyring: Keyring.parse({
    server_id: SERVER_ID,
    clients: [{ client_id: 'alice', keys: [{ kid: 'k1', secret: SECRET }] }],
  }),
  store: new MemoryStore(),
  logger: pino({ level: 'silent' }),
});

const identity = () => signedRequest(alice, 'server_identity', {});

let running: RunningSignetServer<typeof tools> | undefined;
let signet: Signet<typeof tools> | undefined;
let http: Server | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await running?.close({ graceMs: 0 });
  await new Promise((resolve) => (http ? http.close(resolve) : resolve(undefined)));
  await signet?.close({ graceMs: 0 });
  running = signet = http = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'signet-metrics-'));
  dirs.push(dir);
  return dir;
}

/** The value of `name{labels}` in `registry`, read as a scrape would. */
async function sample(registry: Registry, name: string, labels: Record<string, string>) {
  const metric = registry.getSingleMetric(name);
  const values = (await metric?.get())?.values ?? [];
  return values.find((value) =>
    Object.entries(labels).every(([key, label]) => value.labels[key] === label),
  )?.value;
}

describe('metrics of startSignetServer', () => {
  it('counts into the registry it is given', async () => {
    const registry = new Registry();
    running = await startSignetServer({ ...options(), metrics: { registry } });
    expect(running.metrics?.registry).toBe(registry);
    expect((await postEnvelope(running.url, 'server_identity', identity())).status).toBe(200);
    expect(
      await sample(registry, 'signet_calls_total', { tool: 'server_identity', outcome: 'ok' }),
    ).toBe(1);
  });

  it('serves them on a listener of its own with `listen`', async () => {
    running = await startSignetServer({ ...options(), metrics: { listen: { port: 0 } } });
    const url = running.metrics!.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(url).not.toBe(`${running.url}/metrics`);
    const scrape = await fetch(url);
    expect(scrape.status).toBe(200);
    expect(await scrape.text()).toContain('# TYPE signet_calls_total counter');
    expect((await fetch(`${running.url}/metrics`)).status).toBe(404);
  });

  it.each([
    ['memory', () => new MemoryStore()],
    ['SQLite', () => new SqliteStore(join(tempDir(), 'db'))],
  ])("reads the %s store's nonce count at each scrape", async (_name, store) => {
    const registry = new Registry();
    running = await startSignetServer({ ...options(), store: store(), metrics: { registry } });
    expect(await sample(registry, 'signet_nonces', {})).toBe(0);
    for (let i = 0; i < 3; i++) {
      expect((await postEnvelope(running.url, 'server_identity', identity())).status).toBe(200);
    }
    expect(await sample(registry, 'signet_nonces', {})).toBe(3);
  });

  it('is off by default', async () => {
    running = await startSignetServer(options());
    expect(running.metrics).toBeUndefined();
    expect(running.services.metrics).toBeUndefined();
    expect((await fetch(`${running.url}/metrics`)).status).toBe(404);
  });
});

describe('metrics of createSignet', () => {
  it("counts the calls that tRPC's own adapter serves, refusals at checks 1-3 too", async () => {
    signet = await createSignet({ ...options(), metrics: true });
    const handler = createHTTPHandler({
      router: signet.router,
      basePath: '/trpc/',
      createContext: signet.createContext,
    });
    http = createServer(handler);
    await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    expect((await postEnvelope(url, 'server_identity', identity())).status).toBe(200);
    const forged = { ...identity(), signature: '0'.repeat(64) };
    expect((await postEnvelope(url, 'server_identity', forged)).status).toBe(401);
    const registry = signet.metrics!.registry;
    const tool = 'server_identity';
    expect(await sample(registry, 'signet_calls_total', { tool, outcome: 'ok' })).toBe(1);
    expect(await sample(registry, 'signet_refusals_total', { tool, reason: 'BAD_SIGNATURE' })).toBe(
      1,
    );
  });
});

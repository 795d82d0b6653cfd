// Prometheus metrics (SIGNET_METRICS, issue 20): what /metrics counts after a mix of good and
// refused calls, on both HTTP fronts at once (each server its own registry), on a listener of its
// own, and not at all when off. Every call goes over real HTTP.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSecret, type HttpFront, type KeyringFile } from '@signet/server';
import {
  type EnvelopeSigner,
  postEnvelope,
  signedRequest,
  startProcess,
  watchUrl,
} from '@signet/server/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppServer, startApp } from './app.ts';
import { loadConfig } from './config.ts';

const SERVER_ID = 'metrics-server';
const secret = generateSecret();
const keyring: KeyringFile = {
  server_id: SERVER_ID,
  clients: [{ client_id: 'client-001', keys: [{ kid: 'k1', secret }] }],
};
const me: EnvelopeSigner = { serverId: SERVER_ID, clientId: 'client-001', kid: 'k1', secret };

let dir: string;
let keyringPath: string;
const servers: AppServer[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'signet-metrics-'));
  keyringPath = join(dir, 'keyring.json');
  writeFileSync(keyringPath, JSON.stringify(keyring));
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close({ graceMs: 0 })));
  rmSync(dir, { recursive: true, force: true });
});

async function start(env: Record<string, string>): Promise<AppServer> {
  const server = await startApp(
    loadConfig({
      SIGNET_STORE: 'memory:',
      SIGNET_PORT: '0',
      SIGNET_AUDIT: 'off',
      SIGNET_KEYRING: keyringPath,
      SIGNET_MAX_BODY_BYTES: '1024',
      ...env,
    }),
    pino({ level: 'silent' }),
  );
  servers.push(server);
  return server;
}

/** The samples of a scrape, by `name{label="value",…}` with the labels sorted. */
function samples(text: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels = (match[2] ?? '').match(/\w+="[^"]*"/g) ?? [];
    found.set(`${match[1]}{${labels.sort().join(',')}}`, Number(match[3]));
  }
  return found;
}

async function scrape(url: string): Promise<{ text: string; samples: Map<string, number> }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, samples: samples(text) };
}

/** Sends the mix every front is tested with, and waits for its job to end. */
async function sendMix(url: string): Promise<void> {
  const sum = (numbers: unknown) => signedRequest(me, 'batch_sum', { numbers });
  const first = sum([1, 2, 3]);
  for (const body of [first, sum([4]), sum([5, 6])]) {
    expect((await postEnvelope(url, 'batch_sum', body)).status).toBe(200);
  }
  for (const body of [sum([]), sum('not numbers')]) {
    expect((await postEnvelope(url, 'batch_sum', body)).json?.error?.data.reason).toBe(
      'INVALID_ARGS',
    );
  }
  const forged = { ...sum([1]), signature: 'f'.repeat(64) };
  expect((await postEnvelope(url, 'batch_sum', forged)).status).toBe(401);
  expect((await postEnvelope(url, 'batch_sum', first)).json?.error?.data.reason).toBe(
    'REPLAYED_NONCE',
  );
  // Refused by the HTTP layer: too large, not JSON, the wrong method, no such tool.
  expect((await postEnvelope(url, 'batch_sum', 'x'.repeat(2048))).status).toBe(413);
  expect(
    (await postEnvelope(url, 'batch_sum', sum([1]), { contentType: 'text/plain' })).status,
  ).toBe(415);
  expect((await postEnvelope(url, 'batch_sum', undefined, { method: 'GET' })).status).toBe(405);
  const unknown = `no_such_tool_${Math.random().toString(36).slice(2)}`;
  expect((await postEnvelope(url, unknown, signedRequest(me, unknown, {}))).status).toBe(404);

  // A job, started and watched to its end (the stream ends at the terminal status).
  const started = await postEnvelope(
    url,
    'start_long_task',
    signedRequest(me, 'start_long_task', { seconds: 1, payload: { a: 1 } }),
  );
  const jobId = started.json?.result?.data.result?.job_id as string;
  expect(jobId).toEqual(expect.any(String));
  const stream = await fetch(watchUrl(url, signedRequest(me, 'watch_job', { job_id: jobId })), {
    signal: AbortSignal.timeout(10_000),
  });
  expect(await stream.text()).toContain('"status":"done"');
}

/** What the mix must have counted, on any front. */
const MIX_COUNTS: Record<string, number> = {
  'signet_calls_total{outcome="ok",tool="batch_sum"}': 3,
  'signet_calls_total{outcome="INVALID_ARGS",tool="batch_sum"}': 2,
  'signet_calls_total{outcome="BAD_SIGNATURE",tool="batch_sum"}': 1,
  'signet_calls_total{outcome="REPLAYED_NONCE",tool="batch_sum"}': 1,
  'signet_calls_total{outcome="PAYLOAD_TOO_LARGE",tool="batch_sum"}': 1,
  'signet_calls_total{outcome="UNSUPPORTED_MEDIA_TYPE",tool="batch_sum"}': 1,
  'signet_calls_total{outcome="METHOD_NOT_ALLOWED",tool="batch_sum"}': 1,
  'signet_calls_total{outcome="UNKNOWN_TOOL",tool="_unknown"}': 1,
  'signet_calls_total{outcome="ok",tool="start_long_task"}': 1,
  'signet_calls_total{outcome="ok",tool="watch_job"}': 1,
  'signet_refusals_total{reason="INVALID_ARGS",tool="batch_sum"}': 2,
  'signet_refusals_total{reason="BAD_SIGNATURE",tool="batch_sum"}': 1,
  'signet_refusals_total{reason="REPLAYED_NONCE",tool="batch_sum"}': 1,
  'signet_refusals_total{reason="PAYLOAD_TOO_LARGE",tool="batch_sum"}': 1,
  'signet_refusals_total{reason="UNSUPPORTED_MEDIA_TYPE",tool="batch_sum"}': 1,
  'signet_refusals_total{reason="METHOD_NOT_ALLOWED",tool="batch_sum"}': 1,
  'signet_refusals_total{reason="UNKNOWN_TOOL",tool="_unknown"}': 1,
  // Timed: the calls that reached their procedure (not those the HTTP layer refused).
  'signet_call_duration_seconds_count{tool="batch_sum"}': 7,
  'signet_call_duration_seconds_count{tool="start_long_task"}': 1,
  'signet_job_transitions_total{state="queued",tool="start_long_task"}': 1,
  'signet_job_transitions_total{state="running",tool="start_long_task"}': 1,
  'signet_job_transitions_total{state="done",tool="start_long_task"}': 1,
  // Spent: 3 sums, 2 with bad args (checked after the claim), the start and the watch.
  'signet_nonces{}': 7,
};

function expectMixCounts(scraped: Map<string, number>, text: string): void {
  for (const [sample, count] of Object.entries(MIX_COUNTS)) {
    expect(scraped.get(sample), sample).toBe(count);
  }
  // Nothing beyond the mix, and no label a caller chose or that names a client.
  const calls = [...scraped].filter(([name]) => name.startsWith('signet_calls_total{'));
  expect(calls.reduce((total, [, count]) => total + count, 0)).toBe(13);
  expect(text).not.toContain('client-001');
  expect(text).not.toContain('no_such_tool');
}

describe('SIGNET_METRICS=on', () => {
  const running: Partial<Record<HttpFront, AppServer>> = {};
  beforeAll(async () => {
    // Both fronts in one process at once: each counts into its own registry.
    [running.signet, running.trpc] = await Promise.all([
      start({ SIGNET_METRICS: 'on', SIGNET_HTTP: 'signet' }),
      start({ SIGNET_METRICS: 'on', SIGNET_HTTP: 'trpc' }),
    ]);
  });

  it.each(['signet', 'trpc'] as const)(
    'counts calls and refusals on the %s front',
    async (front) => {
      const server = running[front]!;
      expect(server.httpFront).toBe(front);
      expect(server.metrics?.url).toBe(`${server.url}/metrics`);
      await sendMix(server.url);
      const { text, samples: scraped } = await scrape(`${server.url}/metrics`);
      expectMixCounts(scraped, text);
      expect(text).toContain('# TYPE signet_call_duration_seconds histogram');
    },
  );

  it("one server's calls never show in the other's metrics", async () => {
    // Both have had the mix by now; each still shows it once.
    for (const server of [running.signet!, running.trpc!]) {
      const { text, samples: scraped } = await scrape(`${server.url}/metrics`);
      expectMixCounts(scraped, text);
    }
  });

  it('answers /metrics with GET only', async () => {
    const response = await fetch(`${running.signet!.url}/metrics`, { method: 'POST' });
    expect(response.status).toBe(405);
  });
});

describe('SIGNET_METRICS=<port>', () => {
  it('serves /metrics on a listener of its own, and not on the API port', async () => {
    const server = await start({ SIGNET_METRICS: '0' });
    const url = server.metrics?.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(url).not.toBe(`${server.url}/metrics`);
    expect(
      (
        await postEnvelope(
          server.url,
          'batch_sum',
          signedRequest(me, 'batch_sum', { numbers: [1] }),
        )
      ).status,
    ).toBe(200);
    const { samples: scraped } = await scrape(url!);
    expect(scraped.get('signet_calls_total{outcome="ok",tool="batch_sum"}')).toBe(1);
    // The API port answers /metrics as any other unknown path, and counts it as such.
    expect((await fetch(`${server.url}/metrics`)).status).toBe(404);
    expect((await fetch(url!.replace('/metrics', '/trpc/batch_sum'))).status).toBe(404);
    const after = (await scrape(url!)).samples;
    expect(after.get('signet_refusals_total{reason="UNKNOWN_TOOL",tool="_unknown"}')).toBe(1);
  });

  it('`pnpm serve` prints where the metrics are', async () => {
    const serve = await startProcess(
      process.execPath,
      ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/cli.ts', 'serve'],
      {
        SIGNET_PORT: '0',
        SIGNET_METRICS: '0',
        SIGNET_STORE: 'memory:',
        SIGNET_KEYRING: keyringPath,
        SIGNET_LOG_LEVEL: 'silent',
      },
      30_000,
      /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/,
    );
    try {
      const { samples: scraped } = await scrape(serve.url);
      expect(scraped.get('signet_nonces{}')).toBe(0);
    } finally {
      await serve.kill('SIGTERM');
    }
  });
});

describe('SIGNET_METRICS=off', () => {
  it('has no /metrics', async () => {
    const server = await start({});
    expect(server.metrics).toBeUndefined();
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain('signet_');
  });
});

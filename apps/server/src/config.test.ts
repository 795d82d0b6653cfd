// Configuration from the environment (DESIGN 1.8): the defaults, and a one-line reason for every
// bad value, from loadConfig and from the processes that read it.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyringFile } from '@signet/server';
import { repoRoot } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it("has DESIGN's defaults", () => {
    expect(loadConfig({})).toMatchObject({
      host: '127.0.0.1',
      port: 8787,
      keyringPath: '.signet/keyring.json',
      store: { kind: 'sqlite', path: '.signet/signet.db' },
      role: 'all',
      httpFront: 'signet',
      namespace: 'signet',
      httpLimits: {
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 30_000,
        keepAliveTimeoutMs: 5_000,
        maxConnections: 10_000,
        ssePingMs: 15_000,
      },
      clientLimits: { watchStreams: 100, unfinishedJobs: 1_000 },
      maxBodyBytes: 1_048_576,
      maxOutputBytes: 1_048_576,
      metrics: 'off',
      audit: {
        folder: '.signet/audit/',
        maxBytes: 64 * 1024 * 1024,
        checkpointEveryMs: 10_000,
      },
    });
  });

  it('reads SIGNET_AUDIT and its companions', () => {
    expect(loadConfig({ SIGNET_AUDIT: 'off' }).audit).toBe('off');
    expect(
      loadConfig({
        SIGNET_AUDIT: '/var/log/signet',
        SIGNET_AUDIT_MAX_BYTES: '1048576',
        SIGNET_AUDIT_CHECKPOINT_MS: '500',
      }).audit,
    ).toEqual({ folder: '/var/log/signet', maxBytes: 1_048_576, checkpointEveryMs: 500 });
  });

  it('reads SIGNET_METRICS', () => {
    expect(loadConfig({ SIGNET_METRICS: 'off' }).metrics).toBe('off');
    expect(loadConfig({ SIGNET_METRICS: 'on' }).metrics).toBe('on');
    expect(loadConfig({ SIGNET_METRICS: '9464' }).metrics).toEqual({ port: 9464 });
    expect(loadConfig({ SIGNET_METRICS: '0', SIGNET_PORT: '0' }).metrics).toEqual({ port: 0 });
  });

  it('reads the per-client caps', () => {
    expect(
      loadConfig({ SIGNET_MAX_WATCHES_PER_CLIENT: '2', SIGNET_MAX_JOBS_PER_CLIENT: '5000' })
        .clientLimits,
    ).toEqual({ watchStreams: 2, unfinishedJobs: 5_000 });
  });

  it('reads the timeouts and the connection cap', () => {
    expect(
      loadConfig({
        SIGNET_HEADERS_TIMEOUT_MS: '500',
        SIGNET_REQUEST_TIMEOUT_MS: '2000',
        SIGNET_KEEPALIVE_TIMEOUT_MS: '100',
        SIGNET_MAX_CONNECTIONS: '50',
        SIGNET_SSE_PING_MS: '1000',
      }).httpLimits,
    ).toEqual({
      headersTimeoutMs: 500,
      requestTimeoutMs: 2_000,
      keepAliveTimeoutMs: 100,
      maxConnections: 50,
      ssePingMs: 1_000,
    });
  });

  it('reads SIGNET_MAX_OUTPUT_BYTES', () => {
    expect(loadConfig({ SIGNET_MAX_OUTPUT_BYTES: '4096' }).maxOutputBytes).toBe(4_096);
  });

  it('reads the HTTP front', () => {
    expect(loadConfig({ SIGNET_HTTP: 'trpc' }).httpFront).toBe('trpc');
    expect(loadConfig({ SIGNET_HTTP: 'signet' }).httpFront).toBe('signet');
  });

  it('reads a Redis store, its role and its namespace', () => {
    expect(
      loadConfig({
        SIGNET_STORE: 'redis://127.0.0.1:6379/2',
        SIGNET_ROLE: 'api',
        SIGNET_NAMESPACE: 'billing-prod_2',
      }),
    ).toMatchObject({
      store: { kind: 'redis', url: 'redis://127.0.0.1:6379/2' },
      role: 'api',
      namespace: 'billing-prod_2',
    });
  });

  it.each([
    [{ SIGNET_PORT: 'abc' }, 'SIGNET_PORT'],
    [{ SIGNET_PORT: '65536' }, 'SIGNET_PORT'],
    [{ SIGNET_PORT: '-1' }, 'SIGNET_PORT'],
    [{ SIGNET_ROLE: 'boss' }, 'SIGNET_ROLE'],
    [{ SIGNET_ROLE: 'api' }, 'SIGNET_ROLE=api'],
    [{ SIGNET_HTTP: 'bogus' }, 'SIGNET_HTTP'],
    [{ SIGNET_HTTP: 'TRPC' }, 'SIGNET_HTTP'],
    [{ SIGNET_STORE: 'postgres://db' }, 'SIGNET_STORE'],
    [{ SIGNET_STORE: 'sqlite:' }, 'SIGNET_STORE'],
    [{ SIGNET_STORE: 'redis://[::1' }, 'SIGNET_STORE'],
    [{ SIGNET_LOCK_MS: '5' }, 'SIGNET_LOCK_MS'],
    [{ SIGNET_RATE_LIMIT: '1.5' }, 'SIGNET_RATE_LIMIT'],
    [{ SIGNET_NAMESPACE: 'a b' }, 'SIGNET_NAMESPACE'],
    [{ SIGNET_NAMESPACE: 'jobs:*' }, 'SIGNET_NAMESPACE'],
    [{ SIGNET_NAMESPACE: 'x'.repeat(65) }, 'SIGNET_NAMESPACE'],
    [{ SIGNET_HEADERS_TIMEOUT_MS: '0' }, 'SIGNET_HEADERS_TIMEOUT_MS'],
    [{ SIGNET_REQUEST_TIMEOUT_MS: '2s' }, 'SIGNET_REQUEST_TIMEOUT_MS'],
    [{ SIGNET_REQUEST_TIMEOUT_MS: '5000' }, 'SIGNET_HEADERS_TIMEOUT_MS (10000) must not exceed'],
    [{ SIGNET_KEEPALIVE_TIMEOUT_MS: '-5' }, 'SIGNET_KEEPALIVE_TIMEOUT_MS'],
    [{ SIGNET_MAX_CONNECTIONS: '0' }, 'SIGNET_MAX_CONNECTIONS'],
    [{ SIGNET_SSE_PING_MS: '10' }, 'SIGNET_SSE_PING_MS'],
    [{ SIGNET_MAX_WATCHES_PER_CLIENT: '0' }, 'SIGNET_MAX_WATCHES_PER_CLIENT'],
    [{ SIGNET_MAX_WATCHES_PER_CLIENT: 'lots' }, 'SIGNET_MAX_WATCHES_PER_CLIENT'],
    [{ SIGNET_MAX_JOBS_PER_CLIENT: '-1' }, 'SIGNET_MAX_JOBS_PER_CLIENT'],
    [{ SIGNET_MAX_JOBS_PER_CLIENT: '2.5' }, 'SIGNET_MAX_JOBS_PER_CLIENT'],
    [{ SIGNET_METRICS: 'yes' }, 'SIGNET_METRICS'],
    [{ SIGNET_METRICS: 'ON' }, 'SIGNET_METRICS'],
    [{ SIGNET_METRICS: '65536' }, 'SIGNET_METRICS'],
    [{ SIGNET_METRICS: '-1' }, 'SIGNET_METRICS'],
    [{ SIGNET_METRICS: '9464.5' }, 'SIGNET_METRICS'],
    [{ SIGNET_METRICS: '8787' }, 'SIGNET_METRICS=8787 is SIGNET_PORT'],
    [{ SIGNET_AUDIT_MAX_BYTES: '1000' }, 'SIGNET_AUDIT_MAX_BYTES'],
    [{ SIGNET_MAX_OUTPUT_BYTES: '1mb' }, 'SIGNET_MAX_OUTPUT_BYTES'],
    [{ SIGNET_MAX_OUTPUT_BYTES: '100' }, 'SIGNET_MAX_OUTPUT_BYTES'],
    [{ SIGNET_AUDIT_CHECKPOINT_MS: 'often' }, 'SIGNET_AUDIT_CHECKPOINT_MS'],
  ])('refuses %o, naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });
});

/** A keyring file the server accepts, so that what is checked after it is reached. */
function validKeyring(): string {
  const path = join(mkdtempSync(join(tmpdir(), 'signet-config-')), 'keyring.json');
  writeFileSync(path, JSON.stringify(generateKeyringFile({ serverId: 's', clientIds: ['c'] })));
  return path;
}

/** Runs `pnpm serve`'s or `pnpm worker`'s entry point with `env`; resolves to how it ended. */
function run(command: 'serve' | 'worker', env: Record<string, string>) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/cli.ts', command],
      { cwd: repoRoot, env: { ...process.env, ...env }, timeout: 30_000 },
      (error, _stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stderr }),
    );
  });
}

describe('bad configuration stops the process with a one-line reason', () => {
  it.each([
    ['serve', { SIGNET_PORT: 'abc' }, 'SIGNET_PORT'],
    ['serve', { SIGNET_NAMESPACE: 'a b' }, 'SIGNET_NAMESPACE'],
    ['serve', { SIGNET_HTTP: 'bogus' }, 'SIGNET_HTTP'],
    ['serve', { SIGNET_MAX_JOBS_PER_CLIENT: '0' }, 'SIGNET_MAX_JOBS_PER_CLIENT'],
    ['serve', { SIGNET_METRICS: 'maybe' }, 'SIGNET_METRICS'],
    // (A file where the folder should be: it cannot be created.)
    [
      'serve',
      { SIGNET_AUDIT: 'package.json/audit', SIGNET_KEYRING: validKeyring() },
      'the audit log cannot be written in',
    ],
    ['worker', { SIGNET_STORE: 'memory:' }, 'SIGNET_STORE=redis://'],
  ] as const)('%s with %o', async (command, env, name) => {
    const { code, stderr } = await run(command, env);
    expect(code).not.toBe(0);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
  });
});

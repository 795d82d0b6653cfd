import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSignetClient, jobHandle } from '@signet/client';
import { ed25519PrivateKey, type RequestEnvelope } from '@signet/protocol';
import { type AuditEntry, type CallEntry, listChains, readLines } from '@signet/server/audit';
import {
  eventually,
  expectEveryChangeNamed,
  repoRoot,
  type ServerProcess,
  startProcess,
  WORKER_READY,
} from '@signet/server/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { loadAuditKeys } from './audit-report.ts';
import {
  client as edClient,
  signed as edSigned,
  hmacSecret,
  keyringWith,
  limitedKey,
  serverKey,
} from './testing/ed25519-app.ts';
import {
  cleanUpAfterEachTest,
  post,
  type Router,
  SERVER_ID,
  signed,
  tempDir,
} from './testing/http.ts';
import { startRedisServer } from './testing/redis-server.ts';

// The audit log of real `pnpm serve` runs (issue 20): what it records of each call and job, that
// `pnpm audit-log verify` accepts it as written and names the line of any single-line change,
// and what a SIGKILL leaves.

cleanUpAfterEachTest();
const running: ServerProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
});

const hmac = { clientId: 'hmac-client', kid: 'k1', secret: hmacSecret };
const limited = (tool: string, args: Record<string, unknown>) =>
  edSigned(tool, args, { client_id: 'ed-limited' }, ed25519PrivateKey(limitedKey.privateKey));

function workspace() {
  const dir = tempDir();
  const keyringPath = join(dir, 'keyring.json');
  writeFileSync(keyringPath, JSON.stringify(keyringWith(serverKey.privateKey)));
  return { dir, keyringPath, audit: join(dir, 'audit'), db: join(dir, 'signet.db') };
}

/**
 * `pnpm serve` (or `pnpm worker`) as its script runs it, spawned as `node` itself: a signal's
 * `kill` then waits for the server's own exit, its log closed (pnpm exits before it).
 */
async function serve(env: Record<string, string>, command = 'serve'): Promise<ServerProcess> {
  const ready = command === 'worker' ? WORKER_READY : undefined;
  const args = [
    '--conditions=@signet/source',
    '--import',
    'tsx',
    'apps/server/src/cli.ts',
    command,
  ];
  const server = await startProcess(process.execPath, args, env, 30_000, ready);
  running.push(server);
  return server;
}

function hmacClient(url: string) {
  return createSignetClient<Router>({
    url,
    serverId: SERVER_ID,
    clientId: hmac.clientId,
    key: { kid: hmac.kid, secret: hmac.secret },
  });
}

/** `pnpm audit-log verify FOLDER --keys KEYRING`, as a person runs it. */
function auditLogVerify(folder: string, keys: string) {
  const run = spawnSync('pnpm', ['--silent', 'audit-log', 'verify', folder, '--keys', keys], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  return { code: run.status, out: run.stdout, err: run.stderr };
}

/** Every entry of every chain in the folder, per chain, in chain order. */
function chainsOf(folder: string): AuditEntry[][] {
  return [...listChains(folder).values()].map((files) =>
    files.flatMap(readLines).flatMap((line) => {
      try {
        return [JSON.parse(line.text) as AuditEntry];
      } catch {
        return []; // a torn last line
      }
    }),
  );
}

describe('the audit log of pnpm serve', () => {
  it('records each authenticated call and job change, verifies, and names any changed line', async () => {
    const { keyringPath, audit } = workspace();
    const server = await serve({
      SIGNET_PORT: '0',
      SIGNET_KEYRING: keyringPath,
      SIGNET_STORE: 'memory:',
      SIGNET_AUDIT: audit,
      SIGNET_AUDIT_CHECKPOINT_MS: '100',
    });
    // What each call should leave: request_id → tool and outcome.
    const expected = new Map<string, { tool: string; outcome: object; ed25519: boolean }>();
    const send = async (envelope: RequestEnvelope, outcome: object, ed25519: boolean) => {
      await post(server.url, envelope.tool, envelope);
      expected.set(envelope.request_id, { tool: envelope.tool, outcome, ed25519 });
    };
    const sum = signed(hmac, 'batch_sum', { numbers: [1, 2] });
    await send(sum, { status: 'ok' }, false);
    await post(server.url, 'batch_sum', sum); // the replay: recorded with its reason
    await send(signed(hmac, 'batch_sum', { numbers: [] }), invalid, false);
    await send(edSigned('batch_sum', { numbers: [3] }), { status: 'ok' }, true);
    await send(limited('batch_sum', { numbers: [1] }), notAllowed, true);
    // Not authenticated, so not recorded: a bad signature.
    const forged = { ...signed(hmac, 'batch_sum', { numbers: [9] }), signature: '0'.repeat(64) };
    await post(server.url, 'batch_sum', forged);

    const ed = edClient({
      url: server.url,
      serverKeys: [{ kid: 's1', publicKey: serverKey.publicKey }],
    });
    const job = jobHandle(ed, await ed.start_long_task.mutate({ seconds: 1, payload: { n: 1 } }));
    await expect(job.result()).resolves.toEqual({ n: 1 });
    const long = await ed.start_long_task.mutate({ seconds: 20, payload: {} });
    await ed.cancel_job.mutate({ job_id: long.job_id });
    // A checkpoint comes within 100 ms of the last append.
    await eventually(async () =>
      chainsOf(audit)[0]?.at(-1)?.type === 'checkpoint' ? true : undefined,
    );
    await server.kill('SIGTERM');

    const [chain, ...others] = chainsOf(audit);
    expect(others).toEqual([]);
    const calls = chain!.filter((e): e is CallEntry => e.type === 'call');
    for (const [requestId, want] of expected) {
      const entries = calls.filter((c) => c.request_id === requestId);
      expect(entries[0], requestId).toMatchObject({ tool: want.tool, outcome: want.outcome });
      expect(entries[0]!.envelope !== undefined, requestId).toBe(want.ed25519);
    }
    expect(calls.filter((c) => c.request_id === sum.request_id).map((c) => c.outcome)).toEqual([
      { status: 'ok' },
      { status: 'error', reason: 'REPLAYED_NONCE' },
    ]);
    expect(calls.some((c) => c.request_id === forged.request_id)).toBe(false);
    expect(calls.map((c) => c.tool)).toEqual(
      expect.arrayContaining(['start_long_task', 'watch_job', 'cancel_job']),
    );
    const statuses = (jobId: string) =>
      chain!.flatMap((e) => (e.type === 'job' && e.job_id === jobId ? [e.status] : []));
    expect(statuses(job.id)).toEqual(['queued', 'running', 'done']);
    expect(statuses(long.job_id)).toEqual(['queued', 'running', 'cancelled']);
    expect(chain!.at(-1)).toMatchObject({ type: 'checkpoint', kid: 's1' });

    const verified = auditLogVerify(audit, keyringPath);
    expect(verified.err).toBe('');
    expect(verified.out).toMatch(
      /^audit-log: OK 1 chains, \d+ entries, 3 clients, .*, 0 unanchored\n$/,
    );
    const tried = expectEveryChangeNamed(audit, loadAuditKeys(keyringPath));
    expect(tried).toBeGreaterThan(chain!.length * 6);

    // And the command names it too: an outcome rewritten in the middle of the log.
    const [file] = [...listChains(audit).values()][0]!;
    const text = readFileSync(file!.path, 'utf8');
    writeFileSync(file!.path, text.replace('"reason":"REPLAYED_NONCE"', '"reason":"RATE_LIMITED"'));
    const line = text.split('\n').findIndex((l) => l.includes('REPLAYED_NONCE')) + 1;
    expect(auditLogVerify(audit, keyringPath)).toMatchObject({
      code: 1,
      err: expect.stringContaining(`FAILED ${file!.name}:${line}: `),
    });
  }, 60_000);

  it('after SIGKILL the log verifies with its tail unanchored, and a restart adds a chain', async () => {
    const { keyringPath, audit, db } = workspace();
    const env = {
      SIGNET_PORT: '0',
      SIGNET_KEYRING: keyringPath,
      SIGNET_STORE: `sqlite:${db}`,
      SIGNET_AUDIT: audit,
      SIGNET_AUDIT_CHECKPOINT_MS: '200',
    };
    const first = await serve(env);
    const c = hmacClient(first.url);
    await c.batch_sum.mutate({ numbers: [1] });
    await eventually(async () =>
      chainsOf(audit)[0]?.at(-1)?.type === 'checkpoint' ? true : undefined,
    );
    const job = await c.start_long_task.mutate({ seconds: 20, payload: {} });
    await eventually(async () =>
      (await c.poll_job.mutate({ job_id: job.job_id })).status === 'running' ? true : undefined,
    );
    await first.kill('SIGKILL');

    // (SIGKILL may land anywhere; a torn last line is what a kill mid-write leaves.)
    const [files] = [...listChains(audit).values()];
    appendFileSync(files!.at(-1)!.path, '{"at":17966');
    const afterKill = auditLogVerify(audit, keyringPath);
    expect(afterKill.code, afterKill.err).toBe(0);
    expect(afterKill.out).toMatch(/, [1-9]\d* unanchored; torn last line ignored: \S+\n$/);

    // The restart on the same database records the interrupted job, in a chain of its own.
    const second = await serve(env);
    await second.kill('SIGTERM');
    const chains = chainsOf(audit);
    expect(chains).toHaveLength(2);
    const restart = chains.find((chain) =>
      chain.some((e) => e.type === 'job' && e.status === 'error'),
    );
    expect(restart?.find((e) => e.type === 'job')).toMatchObject({
      job_id: job.job_id,
      status: 'error',
    });
    const verified = auditLogVerify(audit, keyringPath);
    expect(verified.out).toMatch(/^audit-log: OK 2 chains, .*unanchored; torn last line ignored/);
  }, 60_000);
});

describe.runIf(process.env.SIGNET_TEST_REDIS_URL)('the audit log on Redis', () => {
  it('API servers and workers each keep a chain of the job changes they write', async () => {
    const redis = await startRedisServer();
    try {
      const { keyringPath, audit } = workspace();
      const env = {
        SIGNET_STORE: redis.url,
        SIGNET_PORT: '0',
        SIGNET_KEYRING: keyringPath,
        SIGNET_AUDIT: audit,
        SIGNET_GRACE_MS: '0',
      };
      const api = await serve({ ...env, SIGNET_ROLE: 'api' });
      const worker = await serve(env, 'worker');
      const c = hmacClient(api.url);
      const done = jobHandle(c, await c.start_long_task.mutate({ seconds: 1, payload: { r: 1 } }));
      await expect(done.result()).resolves.toEqual({ r: 1 });
      const long = jobHandle(c, await c.start_long_task.mutate({ seconds: 20, payload: {} }));
      await eventually(async () => ((await long.poll()).status === 'running' ? true : undefined));
      await c.cancel_job.mutate({ job_id: long.id });
      await Promise.all([api.kill('SIGTERM'), worker.kill('SIGTERM')]);

      const chains = chainsOf(audit);
      expect(chains).toHaveLength(2);
      const changes = (chain: AuditEntry[]) =>
        chain.flatMap((e) =>
          e.type === 'job' ? [`${e.job_id === done.id ? 'done' : 'long'}:${e.status}`] : [],
        );
      const apiChain = chains.find((chain) => chain.some((e) => e.type === 'call'))!;
      const workerChain = chains.find((chain) => chain !== apiChain)!;
      expect(changes(apiChain)).toEqual(['done:queued', 'long:queued', 'long:cancelled']);
      expect(changes(workerChain)).toEqual(['done:running', 'done:done', 'long:running']);
      for (const chain of chains)
        expect(chain.at(-1)).toMatchObject({ type: 'checkpoint', kid: 's1' });
      expect(auditLogVerify(audit, keyringPath).out).toMatch(
        /^audit-log: OK 2 chains, \d+ entries, 1 clients, .*, 0 unanchored\n$/,
      );
    } finally {
      await redis.dispose();
    }
  }, 60_000);
});

const invalid = { status: 'error', reason: 'INVALID_ARGS' };
const notAllowed = { status: 'error', reason: 'TOOL_NOT_ALLOWED' };

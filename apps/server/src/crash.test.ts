import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient, jobHandle } from '@signet/client';
import type { JobState } from '@signet/protocol';
import { generateKeyringFile, type SignetRouter } from '@signet/server';
import type { JobTestTools } from '@signet/server/testing';
import { eventually, type ServerProcess, startProcess } from '@signet/server/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { tools } from './tools/contracts.ts';

const keyring = generateKeyringFile({ serverId: 'mcp-server-001', clientIds: ['client-001'] });
const credentials = {
  serverId: keyring.server_id,
  clientId: 'client-001',
  key: keyring.clients[0]!.keys[0]!,
};

const running: ServerProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill('SIGKILL')));
});

function workspace() {
  const dir = mkdtempSync(join(tmpdir(), 'signet-crash-'));
  const keyringPath = join(dir, 'keyring.json');
  writeFileSync(keyringPath, JSON.stringify(keyring));
  return { dir, keyringPath, db: join(dir, 'signet.db') };
}

describe('crash safety', () => {
  it('after SIGKILL with 20 jobs running, a restart on the same file answers for all 20', async () => {
    const { keyringPath, db } = workspace();
    const env = {
      SIGNET_PORT: '0',
      SIGNET_KEYRING: keyringPath,
      SIGNET_STORE: `sqlite:${db}`,
      SIGNET_CONCURRENCY: '20',
    };
    // `pnpm serve`, the real entry point; SIGKILL goes to its whole process group.
    const first = await startProcess('pnpm', ['serve'], env);
    running.push(first);
    const before = createSignetClient<SignetRouter<typeof tools>>({
      url: first.url,
      ...credentials,
    });
    const jobs = await Promise.all(
      Array.from({ length: 20 }, async (_, i) =>
        jobHandle(before, await before.start_long_task.mutate({ seconds: 20, payload: { i } })),
      ),
    );
    await eventually(
      async () => {
        const states = await Promise.all(jobs.map((job) => job.poll()));
        return states.every((s) => s.status === 'running') ? true : undefined;
      },
      10_000,
      'all 20 jobs running',
    );
    await first.kill('SIGKILL');

    const second = await startProcess('pnpm', ['serve'], env);
    running.push(second);
    const after = createSignetClient<SignetRouter<typeof tools>>({
      url: second.url,
      ...credentials,
    });
    const states = await Promise.all(jobs.map((job) => after.poll_job.mutate({ job_id: job.id })));
    expect(states).toHaveLength(20);
    for (const state of states) {
      expect(state).toMatchObject({ status: 'error', error: { code: 'INTERRUPTED' } });
    }
    // start_long_task is not retryable: nothing runs it again.
    const later = await after.poll_job.mutate({ job_id: jobs[0]!.id });
    expect(later.status).toBe('error');
  }, 60_000);

  it('runs a retryable job again once, never twice at the same time', async () => {
    const { dir, keyringPath, db } = workspace();
    const ledger = join(dir, 'ledger.jsonl');
    writeFileSync(ledger, '');
    const env = { JOB_SERVER_DB: db, JOB_SERVER_KEYRING: keyringPath, JOB_SERVER_LEDGER: ledger };
    const args = [
      '--conditions=@signet/source',
      '--import',
      'tsx',
      'apps/server/src/testing/job-server.ts',
    ];
    const starts = () =>
      readFileSync(ledger, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { job: string; attempt: number; pid: number });

    const first = await startProcess(process.execPath, args, env);
    running.push(first);
    const clientOf = (url: string) =>
      createSignetClient<SignetRouter<JobTestTools>>({ url, ...credentials });
    const client = clientOf(first.url);
    // Long enough never to finish here: trial division up to 50 million in 1000 steps.
    const { job_id } = await client.count_primes.mutate({ below: 50_000_000, steps: 1000 });
    const held = await client.held.mutate({ label: 'not retryable' });
    await eventually(async () => (starts().length === 1 ? true : undefined), 10_000, 'a start');
    await first.kill('SIGKILL');

    const second = await startProcess(process.execPath, args, env);
    running.push(second);
    await eventually(async () => (starts().length === 2 ? true : undefined), 10_000, 'a rerun');
    const [one, two] = starts();
    expect(one).toMatchObject({ job: job_id, attempt: 1, pid: first.child.pid });
    // The rerun began in the new process, after the old one was dead.
    expect(two).toMatchObject({ job: job_id, attempt: 2, pid: second.child.pid });
    const again = clientOf(second.url);
    const rerun: JobState = await again.poll_job.mutate({ job_id });
    expect(rerun.status).toBe('running');
    expect(await again.poll_job.mutate({ job_id: held.job_id })).toMatchObject({
      status: 'error',
      error: { code: 'INTERRUPTED' },
    });
    await second.kill('SIGKILL');

    // Once is all: a second crash ends it as INTERRUPTED.
    const third = await startProcess(process.execPath, args, env);
    running.push(third);
    expect(await clientOf(third.url).poll_job.mutate({ job_id })).toMatchObject({
      status: 'error',
      error: { code: 'INTERRUPTED' },
    });
    expect(starts()).toHaveLength(2);
  }, 60_000);
});

// End to end over real HTTP: the typed client against the app as `pnpm serve` starts it. Identity,
// a tool call, key rotation, clock correction, a job run to its output (and kept from other
// clients), and a refusal as the client reports it.
import { jobHandle, signetReason } from '@signet/client';
import { buildManifest, manifestFingerprint } from '@signet/contracts';
import { PROTOCOL_VERSION } from '@signet/protocol';
import { describe, expect, it } from 'vitest';
import { rejectionOf, SERVER_ID, secrets, typedClient, useE2eApp } from './testing/e2e-app.ts';
import { tools } from './tools/contracts.ts';

useE2eApp();

// ---- the typed client ------------------------------------------------------------------------

describe('the typed client against the running app', () => {
  it('server_identity names the server, its contracts and its tools', async () => {
    const identity = await typedClient({}).server_identity.mutate({});
    expect(identity.server_id).toBe(SERVER_ID);
    expect(identity.fingerprint).toBe(manifestFingerprint(buildManifest(tools)));
    expect([...identity.capabilities.tools].sort()).toEqual(
      [
        'batch_sum',
        'cancel_job',
        'list_tools',
        'poll_job',
        'server_identity',
        'start_long_task',
        'watch_job',
      ].sort(),
    );
    expect(identity.capabilities.protocol).toBe(PROTOCOL_VERSION);
    expect(identity.capabilities.limits.max_body_bytes).toBe(1024 * 1024);
  });

  it('batch_sum adds the numbers', async () => {
    await expect(typedClient({}).batch_sum.mutate({ numbers: [1, 2, 3.5] })).resolves.toEqual({
      count: 3,
      total: 6.5,
    });
  });

  it('either key of a client works while keys rotate', async () => {
    const withK2 = typedClient({ kid: 'k2', secret: secrets.k2 });
    await expect(withK2.batch_sum.mutate({ numbers: [4, 5] })).resolves.toEqual({
      count: 2,
      total: 9,
    });
  });

  it('a client whose clock is off by more than the window corrects it and gets through', async () => {
    const skewed = typedClient({ now: () => Date.now() + 400_000 });
    await expect(skewed.batch_sum.mutate({ numbers: [1] })).resolves.toEqual({
      count: 1,
      total: 1,
    });
  });

  it('a job runs to its output, reports progress, and only its owner may touch it', async () => {
    const client = typedClient({});
    const other = typedClient({ clientId: 'client-002', secret: secrets.client2 });
    const payload = { a: 1, nested: { list: [1, 'two', null] } };
    const ticket = await client.start_long_task.mutate({ seconds: 1, payload });
    expect(ticket.job_id).toMatch(/^[0-9a-f-]{36}$/);

    // Another client sees no such job, and cannot cancel it.
    for (const attempt of [
      other.poll_job.mutate({ job_id: ticket.job_id }),
      other.cancel_job.mutate({ job_id: ticket.job_id }),
    ]) {
      const error = await rejectionOf(attempt);
      expect(signetReason(error)).toBe('JOB_NOT_FOUND');
      expect((error as { data?: { httpStatus?: number } }).data?.httpStatus).toBe(404);
    }

    const progress: Array<{ current: number; total?: number }> = [];
    const output = await jobHandle(client, ticket).result({
      onProgress: (p) => progress.push(p),
    });
    expect(output).toEqual(payload);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((p) => p.total === 1)).toBe(true);

    await expect(client.poll_job.mutate({ job_id: ticket.job_id })).resolves.toEqual({
      job_id: ticket.job_id,
      status: 'done',
      output: payload,
    });
    // Cancelling a finished job changes nothing.
    await expect(client.cancel_job.mutate({ job_id: ticket.job_id })).resolves.toMatchObject({
      status: 'done',
    });
    await expect(client.poll_job.mutate({ job_id: ticket.job_id })).resolves.toMatchObject({
      status: 'done',
      output: payload,
    });
  });

  it('invalid arguments are refused with INVALID_ARGS', async () => {
    const error = await rejectionOf(typedClient({}).batch_sum.mutate({ numbers: [] }));
    expect(signetReason(error)).toBe('INVALID_ARGS');
  });
});

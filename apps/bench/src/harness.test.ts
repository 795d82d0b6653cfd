import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { ServerProcess } from '@signet/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bench, type Generator, spawnTarget, startGenerator, treeCpuUs } from './harness.ts';
import type { LoadPlan } from './load.ts';

describe('the load generator', () => {
  let raw: ServerProcess;
  let generator: Generator;
  let plan: Extract<LoadPlan, { kind: 'http' }>;

  beforeAll(async () => {
    raw = await spawnTarget([bench('targets/raw.ts')], {});
    generator = startGenerator();
    plan = {
      kind: 'http',
      url: raw.url,
      path: '/',
      body: { fixed: { numbers: [1, 2, 3] } },
      expect: { count: 3, total: 6 },
      connections: 4,
      seconds: 0.3,
    };
  });
  afterAll(async () => {
    generator?.close();
    await raw?.kill('SIGKILL');
  });

  it('runs one plan after another in the same process', async () => {
    for (let i = 0; i < 3; i++) {
      const result = await generator.run(plan);
      expect(result.total).toBeGreaterThan(0);
      expect(result.errors).toBe(0);
      expect(result.perSecond).toBeGreaterThan(0);
    }
  });

  it('refuses a plan whose target answers something else, and runs the next one', async () => {
    await expect(generator.run({ ...plan, expect: { count: 4 } })).rejects.toThrow(
      /answered 200 \{"count":3,"total":6\}/,
    );
    expect((await generator.run(plan)).errors).toBe(0);
  });
});

describe('treeCpuUs', () => {
  it("counts a child process's CPU time in its parent's", async () => {
    // A parent that spawns a child burning 300 ms of its own CPU time (not of the clock: this VM
    // may not run it for a while), which then idles; the parent passes its output on.
    const burn = `while (process.cpuUsage().user < 300000); console.log('burnt'); setInterval(() => {}, 1000);`;
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(burn)}], { stdio: 'inherit' }); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], detached: true },
    );
    try {
      await once(parent.stdout, 'data');
      expect(treeCpuUs(parent.pid!)).toBeGreaterThanOrEqual(300_000);
    } finally {
      // (The whole group: the child too.)
      process.kill(-parent.pid!, 'SIGKILL');
    }
  });

  it('is 0 for a process that is not there', () => {
    expect(treeCpuUs(2 ** 22 + 1)).toBe(0);
  });
});

// Job contracts used by the job tests: real work in steps, a job the test holds open, and
// failures. They run through the same engine and router as the shipped tools.
import { appendFileSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { contractSet, defineJob } from '@signet/contracts';
import { z } from 'zod';
import type { Handlers } from '../handlers.ts';
import { ToolError } from '../jobs/tool-error.ts';

export const countPrimes = defineJob({
  name: 'count_primes',
  description: 'Counts the primes below `below`, in `steps` chunks, reporting progress after each.',
  input: z.strictObject({ below: z.int().min(2).max(50_000_000), steps: z.int().min(1).max(1000) }),
  output: z.strictObject({ count: z.int() }),
  retryable: true,
});

export const held = defineJob({
  name: 'held',
  description: 'Reports progress, then waits until the test releases it or it is cancelled.',
  input: z.strictObject({ label: z.string() }),
  output: z.strictObject({ label: z.string() }),
});

export const failing = defineJob({
  name: 'failing',
  description: 'Fails, with a message meant for the caller or an internal one.',
  input: z.strictObject({ friendly: z.boolean() }),
  output: z.strictObject({}),
});

export const jobTestTools = contractSet(countPrimes, held, failing);
export type JobTestTools = typeof jobTestTools;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** What the held jobs are doing, for the test to wait on and steer. */
export class HeldJobs {
  readonly started: string[] = [];
  readonly aborted = new Map<string, number>();
  private readonly releases = new Map<string, () => void>();
  private readonly waiters: Array<() => void> = [];

  release(label: string): void {
    this.releases.get(label)?.();
  }

  /** Resolves once `predicate` holds, checked on every change; rejects after `ms`. */
  until(predicate: () => boolean, ms = 5_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for held jobs')), ms);
      const check = () => {
        if (predicate()) {
          clearTimeout(timer);
          resolve();
        } else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  changed(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  handler: Handlers<JobTestTools>['held'] = async ({ label }, job) => {
    this.started.push(label);
    job.progress({ current: 1, total: 2, message: `${label} halfway` });
    this.changed();
    await new Promise<void>((resolve, reject) => {
      this.releases.set(label, resolve);
      job.signal.addEventListener('abort', () => {
        this.aborted.set(label, Date.now());
        this.changed();
        reject(job.signal.reason);
      });
    });
    return { label };
  };
}

export function jobTestHandlers(heldJobs: HeldJobs): Handlers<JobTestTools> {
  return {
    count_primes: async ({ below, steps }, job) => {
      const chunk = Math.ceil(below / steps);
      let count = 0;
      for (let step = 0; step < steps; step++) {
        job.signal.throwIfAborted();
        const end = Math.min(below, (step + 1) * chunk);
        for (let n = step * chunk; n < end; n++) if (isPrime(n)) count++;
        job.progress({ current: step + 1, total: steps });
        await yieldToEventLoop();
      }
      return { count };
    },
    held: heldJobs.handler,
    failing: async ({ friendly }) => {
      if (friendly) throw new ToolError('the input file was empty');
      throw new Error('ENOENT: /var/secret/internal-path.db');
    },
  };
}

/**
 * The job-test handlers for a process that a test kills: each start of count_primes is
 * appended to `ledger` as a JSON line `{job, attempt, pid}`, so the test can tell which process
 * ran which attempt, and that no two ran at once.
 */
export function ledgerHandlers(ledger: string): Handlers<JobTestTools> {
  const handlers = jobTestHandlers(new HeldJobs());
  return {
    ...handlers,
    count_primes: (args, job) => {
      appendFileSync(
        ledger,
        `${JSON.stringify({ job: job.jobId, attempt: job.attempt, pid: process.pid })}\n`,
      );
      return handlers.count_primes(args, job);
    },
  };
}

import { performance } from 'node:perf_hooks';
import { signRequest } from '@signet/client';
import { duplicateMemberName } from '@signet/protocol';

/** µs per call of `run`, over `iterations` calls after as many to warm up. */
function perCallUs(run: () => unknown, iterations: number): number {
  for (let i = 0; i < iterations; i++) run();
  const started = performance.now();
  for (let i = 0; i < iterations; i++) run();
  return ((performance.now() - started) * 1_000) / iterations;
}

/**
 * What check 1's I-JSON scan (issue 17) costs on the body of the benchmark's signed call, next to
 * the JSON.parse that comes before it: one note of the results.
 */
export function iJsonCostNote(
  credentials: { serverId: string; clientId: string; key: { kid: string; secret: string } },
  args: Record<string, unknown>,
  iterations = 200_000,
): string {
  const body = JSON.stringify(signRequest(credentials, 'batch_sum', args, { now: Date.now() }));
  const parse = perCallUs(() => JSON.parse(body), iterations);
  const scan = perCallUs(() => duplicateMemberName(body), iterations);
  return (
    `I-JSON check (duplicateMemberName) on the signed call's ${body.length}-byte body: ` +
    `${scan.toFixed(2)} µs, after JSON.parse's ${parse.toFixed(2)} µs (in the bench process).`
  );
}

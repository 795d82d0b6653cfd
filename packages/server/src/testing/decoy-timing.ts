// For Signet's own tests of check 3 (not exported): how long `authenticate` takes to refuse an
// unknown client, against a known client's bad signature. A decoy key must make them alike.
import { authenticate } from '../envelope.ts';
import type { SignetServices } from '../services.ts';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

/**
 * The ratio of the median times of the two refusals, over `samples` interleaved runs of each
 * after `warmup` runs; a ratio outside 0.7-1.4 (a noisy run on a busy machine) is measured
 * again, up to three times. The last ratio is returned.
 */
export function decoyTimingRatio(opts: {
  services: SignetServices;
  unknownClient: unknown;
  badSignature: unknown;
  warmup: number;
  samples: number;
  label: string;
}): number {
  const time = (raw: unknown) => {
    const start = process.hrtime.bigint();
    try {
      authenticate(raw, 'batch_sum', opts.services);
    } catch {}
    return Number(process.hrtime.bigint() - start);
  };
  for (let i = 0; i < opts.warmup; i++) {
    time(opts.unknownClient);
    time(opts.badSignature);
  }
  let ratio = Number.NaN;
  for (let attempt = 0; attempt < 3; attempt++) {
    const unknown: number[] = [];
    const known: number[] = [];
    for (let i = 0; i < opts.samples; i++) {
      if (i % 2 === 0) {
        unknown.push(time(opts.unknownClient));
        known.push(time(opts.badSignature));
      } else {
        known.push(time(opts.badSignature));
        unknown.push(time(opts.unknownClient));
      }
    }
    ratio = median(unknown) / median(known);
    console.info(
      `${opts.label}: unknown client ${median(unknown)} ns, bad signature ${median(known)} ns ` +
        `(median of ${opts.samples} each), ratio ${ratio.toFixed(3)}`,
    );
    if (ratio > 0.7 && ratio < 1.4) break;
  }
  return ratio;
}

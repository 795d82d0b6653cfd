import { JobFailedError } from '@signet/client';
import { describe, expect, it } from 'vitest';
import { windowsFor } from './growth.ts';
import { outcomeOf } from './mix.ts';
import { outcomeLines, sampleHeader, sampleRow } from './report.ts';
import { Tally } from './tally.ts';

describe('Tally', () => {
  it('counts each outcome, and keeps an example of each unexpected one', () => {
    const tally = new Tally();
    tally.begin('batch_sum')('200', '200');
    tally.begin('batch_sum')('500 INTERNAL', '200', 'internal error');
    tally.begin('batch_sum')('500 INTERNAL', '200', 'another');
    const open = tally.begin('job');
    expect(tally.inFlight()).toEqual([['job', 1]]);
    open('done', 'done');
    open('timeout', 'done');
    expect(tally.inFlight()).toEqual([]);
    expect(tally.completed).toBe(4);
    expect(tally.unexpected()).toEqual([
      { kind: 'batch_sum', outcome: '500 INTERNAL', count: 2, example: 'internal error' },
    ]);
    expect(outcomeLines(tally)).toEqual([
      'operation  count  expected  unexpected',
      'batch_sum      3  1× 200    2× 500 INTERNAL',
      'job            1  1× done   —',
    ]);
  });
});

describe('outcomeOf', () => {
  it("labels a refusal with the server's status and reason", () => {
    const refusal = Object.assign(new Error('refused'), {
      data: { httpStatus: 409, reason: 'REPLAYED_NONCE' },
    });
    expect(outcomeOf(refusal)).toBe('409 REPLAYED_NONCE');
    expect(outcomeOf(Object.assign(new Error('x'), { data: { httpStatus: 502 } }))).toBe('502');
  });

  it('labels failed jobs, timeouts and transport errors', () => {
    expect(outcomeOf(new JobFailedError('j', 'CANCELLED', 'cancelled'))).toBe('job CANCELLED');
    expect(outcomeOf(new DOMException('timed out', 'TimeoutError'))).toBe('timeout');
    expect(outcomeOf(new TypeError('fetch failed'))).toBe('transport error');
  });
});

describe('the sample table', () => {
  it('lines up its rows under its header, n/a for what was not measured', () => {
    const header = sampleHeader('MB');
    const row = sampleRow(
      {
        t: 130.2,
        rssMb: 128.44,
        heapUsedMb: Number.NaN,
        heapLiveMb: 20.04,
        fds: 57,
        resources: 33,
        store: null,
        opsPerSecond: 401.2,
      },
      windowsFor(600),
      'MB',
    );
    expect(row.length).toBe(header.length);
    expect(row.split(/\s+/).filter(Boolean)).toEqual([
      '130',
      'early',
      '128.4',
      'n/a',
      '20.0',
      '57',
      '33',
      'n/a',
      '401',
    ]);
  });
});

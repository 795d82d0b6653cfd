import { describe, expect, it } from 'vitest';
import { type Reply, responseEnvelopeSchema } from './envelope.ts';
import {
  isJobStatus,
  isTerminal,
  JOB_STATUSES,
  type JobState,
  jobReplyProblem,
  jobStateFromReply,
  jobStateToReply,
} from './jobs.ts';
import { sign, verify } from './signing.ts';

const JOB_ID = '6f1b0c52-3c1e-4d43-9a8e-2f8d3b6a7c10';

/** Each job state with the reply DESIGN 1.7 prescribes for it. */
const CASES: ReadonlyArray<[string, JobState, Reply]> = [
  [
    'queued',
    { job_id: JOB_ID, status: 'queued' },
    { status: 'queued', ok: true, result: { job_id: JOB_ID }, error: null },
  ],
  [
    'queued with progress',
    { job_id: JOB_ID, status: 'queued', progress: { current: 0 } },
    {
      status: 'queued',
      ok: true,
      result: { job_id: JOB_ID, progress: { current: 0 } },
      error: null,
    },
  ],
  [
    'running',
    { job_id: JOB_ID, status: 'running' },
    { status: 'running', ok: true, result: { job_id: JOB_ID }, error: null },
  ],
  [
    'running with progress',
    { job_id: JOB_ID, status: 'running', progress: { current: 3, total: 10, message: 'step 3' } },
    {
      status: 'running',
      ok: true,
      result: { job_id: JOB_ID, progress: { current: 3, total: 10, message: 'step 3' } },
      error: null,
    },
  ],
  [
    'done',
    { job_id: JOB_ID, status: 'done', output: { echo: { a: [1, 'x', null] }, n: 2 } },
    { status: 'done', ok: true, result: { echo: { a: [1, 'x', null] }, n: 2 }, error: null },
  ],
  [
    'done with an empty output',
    { job_id: JOB_ID, status: 'done', output: {} },
    { status: 'done', ok: true, result: {}, error: null },
  ],
  [
    'error (TOOL_FAILED)',
    { job_id: JOB_ID, status: 'error', error: { code: 'TOOL_FAILED', message: 'boom' } },
    {
      status: 'error',
      ok: false,
      result: null,
      error: { code: 'TOOL_FAILED', message: 'boom' },
    },
  ],
  [
    'error (INTERRUPTED)',
    { job_id: JOB_ID, status: 'error', error: { code: 'INTERRUPTED', message: 'process died' } },
    {
      status: 'error',
      ok: false,
      result: null,
      error: { code: 'INTERRUPTED', message: 'process died' },
    },
  ],
  [
    'cancelled',
    { job_id: JOB_ID, status: 'cancelled' },
    { status: 'cancelled', ok: true, result: null, error: null },
  ],
];

describe('jobStateToReply / jobStateFromReply (DESIGN 1.7)', () => {
  it('covers every job status', () => {
    expect([...JOB_STATUSES]).toEqual(['queued', 'running', 'done', 'error', 'cancelled']);
    expect(new Set(CASES.map(([, state]) => state.status))).toEqual(new Set(JOB_STATUSES));
  });

  it.each(CASES)('%s: the reply is exactly what DESIGN 1.7 prescribes', (_name, state, reply) => {
    // toStrictEqual: no stray `progress: undefined` or extra keys in the signed result.
    expect(jobStateToReply(state)).toStrictEqual(reply);
  });

  it.each(CASES)('%s: ok is status !== "error"', (_name, state) => {
    const reply = jobStateToReply(state);
    expect(reply.status).toBe(state.status);
    expect(reply.ok).toBe(state.status !== 'error');
    expect(reply.error === null).toBe(state.status !== 'error');
  });

  it.each(CASES)('%s: round-trips through a reply', (_name, state) => {
    const reply = jobStateToReply(state);
    expect(jobStateFromReply(JOB_ID, reply)).toStrictEqual(state);
  });

  it.each(CASES)('%s: round-trips through a signed envelope on the wire', (_name, state) => {
    const secret = 'a-job-secret-of-at-least-32-characters';
    const envelope = sign(
      {
        v: 'mcp/0.1',
        request_id: 'r1',
        ts_ms: 1763900000000,
        server_id: 'mcp-server-001',
        nonce: 'Yw9vQ2xVbH1sZ0NrTmF3cQ',
        ...jobStateToReply(state),
      },
      secret,
    );
    const received = JSON.parse(JSON.stringify(envelope));
    expect(responseEnvelopeSchema.safeParse(received).success).toBe(true);
    expect(verify(received, secret)).toBe(true);
    expect(jobStateFromReply(JOB_ID, received)).toStrictEqual(state);
  });

  it('uses the job id it is given, not one from the result', () => {
    const reply = jobStateToReply({ job_id: 'other', status: 'running' });
    expect(jobStateFromReply(JOB_ID, reply)).toStrictEqual({ job_id: JOB_ID, status: 'running' });
  });

  it('never coerces: a reply that is not a job state throws (issue 21, V1)', () => {
    const refused: Array<[Reply, RegExp]> = [
      // A signed refusal of the call (what a replay earns) is not a failed job.
      [
        {
          status: 'error',
          ok: false,
          result: null,
          error: { code: 'REPLAYED_NONCE', message: 'x' },
        },
        /REPLAYED_NONCE refusal/,
      ],
      [
        { status: 'error', ok: false, result: null, error: { code: 'INTERNAL', message: 'x' } },
        /INTERNAL/,
      ],
      [{ status: 'error', ok: false, result: null, error: null }, /without its error/],
      [
        { status: 'error', ok: true, result: null, error: { code: 'TOOL_FAILED', message: 'x' } },
        /ok is true/,
      ],
      [{ status: 'done', ok: true, result: null, error: null }, /without its output/],
      [{ status: 'done', ok: false, result: {}, error: null }, /ok is false/],
      [{ status: 'running', ok: true, result: null, error: null }, /without its result/],
      [
        { status: 'running', ok: true, result: { progress: { current: '1' } }, error: null },
        /malformed progress/,
      ],
      [
        {
          status: 'cancelled',
          ok: true,
          result: null,
          error: { code: 'TOOL_FAILED', message: 'x' },
        },
        /with an error/,
      ],
      [{ status: 'cancelled', ok: true, result: {}, error: null }, /with a result/],
    ];
    for (const [reply, problem] of refused) {
      expect(jobReplyProblem(reply)).toMatch(problem);
      expect(() => jobStateFromReply(JOB_ID, reply)).toThrow(problem);
    }
    for (const code of ['TOOL_FAILED', 'INTERRUPTED'] as const) {
      const reply: Reply = {
        status: 'error',
        ok: false,
        result: null,
        error: { code, message: 'm' },
      };
      expect(jobReplyProblem(reply)).toBeUndefined();
      expect(jobStateFromReply(JOB_ID, reply)).toStrictEqual({
        job_id: JOB_ID,
        status: 'error',
        error: { code, message: 'm' },
      });
    }
  });

  it('refuses statuses that are not job statuses', () => {
    for (const status of ['ok', 'accepted'] as const) {
      expect(() =>
        jobStateFromReply(JOB_ID, { status, ok: true, result: {}, error: null }),
      ).toThrow(status);
    }
  });
});

describe('isTerminal / isJobStatus', () => {
  it('done, error and cancelled are terminal; queued and running are not', () => {
    expect(JOB_STATUSES.filter(isTerminal)).toEqual(['done', 'error', 'cancelled']);
  });

  it("a job's statuses mark a job-state envelope; a tool's ok and a start's accepted do not", () => {
    for (const status of JOB_STATUSES) expect(isJobStatus(status)).toBe(true);
    for (const status of ['ok', 'accepted', '', 'DONE']) expect(isJobStatus(status)).toBe(false);
  });
});

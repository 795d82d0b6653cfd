import type { JobErrorCode, ReasonCode } from '@signet/protocol';
import { TRPCClientError } from '@trpc/client';

/** Why the client refused a response: it is never returned as data. */
export type ResponseProblem =
  | 'BAD_RESPONSE_SIGNATURE'
  | 'BAD_RESPONSE_ENVELOPE'
  | 'RESPONSE_MISMATCH'
  /** A job's signed `job.seq` went back, or a watch event did not come after the last one. */
  | 'BAD_JOB_SEQUENCE';

/** A response that did not prove it came from the server for this very request. */
export class SignetResponseError extends Error {
  override name = 'SignetResponseError';
  constructor(
    readonly problem: ResponseProblem,
    message: string,
  ) {
    super(message);
  }
}

/**
 * An unsigned error that claims a reason only a signed refusal may carry (issue 21, W7): reported
 * as BAD_RESPONSE_ENVELOPE, never as that reason. `claimed` is what it claimed, for the logs.
 */
export class UnsignedReasonError extends SignetResponseError {
  override name = 'SignetResponseError';
  constructor(readonly claimed: string) {
    super(
      'BAD_RESPONSE_ENVELOPE',
      `an unsigned error claims ${JSON.stringify(claimed.slice(0, 64))}, which only a signed refusal may carry`,
    );
  }
}

/** A job that ended without output. */
export class JobFailedError extends Error {
  override name = 'JobFailedError';
  constructor(
    readonly jobId: string,
    readonly code: JobErrorCode | 'CANCELLED',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The reason code of a failed call: the server's (DESIGN 1.5) or the client's own refusal of a
 * response. `undefined` for a transport failure.
 */
export function signetReason(error: unknown): ReasonCode | ResponseProblem | undefined {
  if (error instanceof SignetResponseError) return error.problem;
  if (error instanceof TRPCClientError) {
    if (error.cause instanceof SignetResponseError) return error.cause.problem;
    const reason = (error.data as { reason?: unknown } | undefined)?.reason;
    return typeof reason === 'string' ? (reason as ReasonCode) : undefined;
  }
  return undefined;
}

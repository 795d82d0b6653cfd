import { REASON_STATUS, type ReasonCode, type ResponseEnvelope } from '@signet/protocol';
import { TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';

const TRPC_CODE_BY_STATUS: Record<number, TRPC_ERROR_CODE_KEY> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_SUPPORTED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_SERVER_ERROR',
  503: 'SERVICE_UNAVAILABLE',
};

/**
 * A refusal with one of DESIGN 1.5's reason codes. Its message goes to the client, so it must
 * never hold a secret or an internal detail. `envelope` is set once the caller is authenticated.
 */
export class SignetError extends TRPCError {
  readonly reason: ReasonCode;
  readonly details: unknown;
  envelope: ResponseEnvelope | undefined;
  /** Seconds, for 429's Retry-After. */
  readonly retryAfter: number | undefined;

  constructor(
    reason: ReasonCode,
    message: string,
    opts: { details?: unknown; cause?: unknown; retryAfter?: number } = {},
  ) {
    super({
      code: TRPC_CODE_BY_STATUS[REASON_STATUS[reason]] ?? 'INTERNAL_SERVER_ERROR',
      message,
      cause: opts.cause,
    });
    this.name = 'SignetError';
    this.reason = reason;
    this.details = opts.details;
    this.retryAfter = opts.retryAfter;
  }
}

/** Thrown by stores when their backend cannot be reached: the call fails fast with 503. */
export class StoreUnavailableError extends SignetError {
  constructor(cause?: unknown) {
    super('STORE_UNAVAILABLE', 'the state store is unavailable, try again shortly', { cause });
  }
}

/** The reason code for errors that tRPC raises itself, before any Signet code ran. */
export function reasonForTrpcCode(code: TRPC_ERROR_CODE_KEY, cause?: unknown): ReasonCode {
  switch (code) {
    case 'PARSE_ERROR':
      return 'PARSE_ERROR';
    case 'BAD_REQUEST':
      // tRPC's own adapters report a body (or `input`) that is not JSON as a BAD_REQUEST caused
      // by JSON.parse's SyntaxError: check 1's 400 PARSE_ERROR.
      return cause instanceof SyntaxError ? 'PARSE_ERROR' : 'BAD_ENVELOPE';
    case 'NOT_FOUND':
      return 'UNKNOWN_TOOL';
    case 'METHOD_NOT_SUPPORTED':
      return 'METHOD_NOT_ALLOWED';
    case 'PAYLOAD_TOO_LARGE':
      return 'PAYLOAD_TOO_LARGE';
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 'TOO_MANY_REQUESTS':
      return 'RATE_LIMITED';
    case 'SERVICE_UNAVAILABLE':
      return 'STORE_UNAVAILABLE';
    default:
      return 'INTERNAL';
  }
}

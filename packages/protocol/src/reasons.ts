/** Reason codes of DESIGN 1.5 and the HTTP status each one is answered with. */
export const REASON_STATUS = {
  PARSE_ERROR: 400,
  BAD_ENVELOPE: 400,
  UNSUPPORTED_VERSION: 400,
  TOOL_MISMATCH: 400,
  INVALID_ARGS: 400,
  BAD_SIGNATURE: 401,
  WRONG_SERVER: 401,
  STALE_REQUEST: 401,
  TOOL_NOT_ALLOWED: 403,
  UNKNOWN_TOOL: 404,
  JOB_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REPLAYED_NONCE: 409,
  REQUEST_ID_REUSED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  TOOL_FAILED: 500,
  INTERNAL: 500,
  STORE_UNAVAILABLE: 503,
} as const;

export type ReasonCode = keyof typeof REASON_STATUS;

export function isReasonCode(value: unknown): value is ReasonCode {
  return typeof value === 'string' && Object.hasOwn(REASON_STATUS, value);
}

/** Reasons that a failed job (not a failed call) reports in its envelope's `error.code`. */
export type JobErrorCode = 'TOOL_FAILED' | 'INTERRUPTED';

import type { ReasonCode, ResponseEnvelope } from '@signet/protocol';
import { REASON_STATUS } from '@signet/protocol';
import { initTRPC, TRPCError } from '@trpc/server';
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import { reasonForTrpcCode, SignetError } from './errors.ts';
import type { SignetServices } from './services.ts';

export interface SignetContext {
  services: SignetServices;
}

export interface SignetErrorShape {
  message: string;
  code: number;
  data: {
    code: string;
    httpStatus: number;
    path?: string;
    reason: ReasonCode;
    envelope?: ResponseEnvelope;
    details?: unknown;
  };
}

/** What a client may read of an error not raised by Signet itself: never its own message. */
const GENERIC_MESSAGES: Partial<Record<ReasonCode, string>> = {
  INTERNAL: 'internal error',
  TOOL_FAILED: 'the tool failed',
};

/** The tRPC error shape of DESIGN 1.2: reason code, and the signed envelope once authenticated. */
export function errorShape(error: TRPCError, path: string | undefined): SignetErrorShape {
  const signet = error instanceof SignetError ? error : undefined;
  const reason = signet?.reason ?? reasonForTrpcCode(error.code);
  const message = signet
    ? error.message
    : (GENERIC_MESSAGES[reason] ?? (error.cause ? reason.toLowerCase() : error.message));
  return {
    message,
    code: TRPC_ERROR_CODES_BY_KEY[error.code],
    data: {
      code: error.code,
      httpStatus: REASON_STATUS[reason],
      ...(path !== undefined ? { path } : {}),
      reason,
      ...(signet?.envelope ? { envelope: signet.envelope } : {}),
      ...(signet?.details !== undefined ? { details: signet.details } : {}),
    },
  };
}

export const t = initTRPC.context<SignetContext>().create({
  isDev: false,
  allowOutsideOfServer: true,
  errorFormatter: ({ error, path }) => errorShape(error, path),
});

export { TRPCError };

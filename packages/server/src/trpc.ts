import type { ReasonCode, RequestEnvelope, SignetErrorShape } from '@signet/protocol';
import { REASON_STATUS } from '@signet/protocol';
import { initTRPC, TRPCError, type TRPCMiddlewareFunction } from '@trpc/server';
import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import { envelopeSignature } from './envelope-middleware.ts';
import { reasonForTrpcCode, SignetError } from './errors.ts';
import type { SignetServices } from './services.ts';

// The one wiring file: context → `t` → `signedProcedure`. Every Signet procedure is built from
// `signedProcedure`, so the envelope checks (DESIGN 1.4) live in one place.

/** What each request brings: the services every call shares (see `createSignet`). */
export interface SignetContext {
  services: SignetServices;
}

/** What the envelope middleware verified, on `ctx.signet` for handlers and users' middleware. */
export interface SignetCallInfo {
  clientId: string;
  requestId: string;
  tool: string;
  /** Which of the client's keys verified the signature. */
  kid: string;
  serverId: string;
  /** The verified request envelope, as signed. */
  envelope: RequestEnvelope;
}

/** The context of a call once authenticated. */
export interface SignetCallContext extends SignetContext {
  signet: SignetCallInfo;
}

/** How a procedure's output becomes its signed reply (see `envelope-middleware.ts`). */
export type SignetProcedureKind = 'tool' | 'job' | 'poll' | 'cancel' | 'watch';

export interface SignetMeta {
  signet?: {
    kind: SignetProcedureKind;
    /**
     * A read that may start alongside the nonce claim (check 6), with the unchecked args; its
     * promise reaches the resolver as `ctx.prefetched`, and is answered only if every check
     * passes. poll_job uses it so that its read shares a round trip with the claim.
     */
    prefetch?: (
      clientId: string,
      args: Record<string, unknown>,
      services: SignetServices,
    ) => Promise<unknown>;
  };
}

/** What a client may read of an error not raised by Signet itself: never its own message. */
const GENERIC_MESSAGES: Partial<Record<ReasonCode, string>> = {
  PARSE_ERROR: 'not valid JSON',
  INTERNAL: 'internal error',
  TOOL_FAILED: 'the tool failed',
};

/** The tRPC error shape of DESIGN 1.2: reason code, and the signed envelope once authenticated. */
export function errorShape(error: TRPCError, path: string | undefined): SignetErrorShape {
  const signet = error instanceof SignetError ? error : undefined;
  const reason = signet?.reason ?? reasonForTrpcCode(error.code, error.cause);
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

export const t = initTRPC
  .context<SignetContext>()
  .meta<SignetMeta>()
  .create({
    isDev: false,
    allowOutsideOfServer: true,
    errorFormatter: ({ error, path }) => errorShape(error, path),
  });

/** The procedure builder behind every Signet tool: checks 1-7 run, then the rest of the chain. */
export const signedProcedure = t.procedure.use(envelopeSignature);

/**
 * Times a call and counts its outcome into `services.metrics`, around everything else (so
 * refusals at checks 1-3 count too): a timer and a counter increment, no more, per call.
 */
const callMetrics: TRPCMiddlewareFunction<
  SignetContext,
  SignetMeta,
  object,
  object,
  unknown
> = async ({ ctx, path, next }) => {
  const metrics = ctx.services.metrics;
  if (!metrics) return next();
  const startedAt = performance.now();
  const result = await next();
  metrics.called(path, startedAt, result.ok ? undefined : result.error);
  return result;
};

/** `signedProcedure` with `callMetrics` first: what a server with metrics on is built from. */
export const measuredProcedure = t.procedure
  .use(callMetrics)
  .use(envelopeSignature) as unknown as typeof signedProcedure;

export type { SignetErrorShape };
export { TRPCError };

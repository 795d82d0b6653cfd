import {
  isTerminal,
  jobStateToReply,
  type Reply,
  type ResponseEnvelope,
  type SharedSignedResponse,
  type SignedResponse,
} from '@signet/protocol';
import { TRPCError, type TRPCMiddlewareFunction, tracked } from '@trpc/server';
import {
  authenticate,
  authorize,
  describeIssues,
  errorReply,
  issuesOf,
  protoKeyPath,
  type VerifiedCall,
} from './envelope.ts';
import { SignetError } from './errors.ts';
import type { JobAdmission, JobUpdate, SequencedJobState } from './jobs/types.ts';
import type { SignetServices } from './services.ts';
import { SharedResults } from './shared-results.ts';
import type { SignetCallInfo, SignetContext, SignetMeta, SignetProcedureKind } from './trpc.ts';
import { sharedResultStandIn, whenWatchResponseEnds } from './watch-responses.ts';

/** The JSON text a signed envelope was signed as: Signet's HTTP front sends it as it is. */
export const SIGNED_JSON: unique symbol = Symbol('signet.signedJson');

/**
 * A watch update's envelope as it was signed around its shared result: its JSON text is the
 * pieces' `head`, `result.bytes` and `tail` (Signet's HTTP front writes them as they are).
 */
export const SIGNED_PIECES: unique symbol = Symbol('signet.signedPieces');

/** A signed response envelope, as a Signet procedure returns it (its text rides along). */
export type SignedEnvelope = ResponseEnvelope & {
  [SIGNED_JSON]?: string;
  [SIGNED_PIECES]?: SharedSignedResponse;
};

function signedEnvelope(response: SignedResponse): SignedEnvelope {
  const envelope: SignedEnvelope = response.envelope;
  // (A symbol key: JSON.stringify, as tRPC's own adapters use, leaves it out.)
  envelope[SIGNED_JSON] = response.json;
  return envelope;
}

function sharedEnvelope(response: SharedSignedResponse, ctx: object): SignedEnvelope {
  const envelope: SignedEnvelope = response.envelope;
  envelope[SIGNED_PIECES] = response;
  // (On tRPC's front, the result's shared bytes are spliced in as the envelope is written.)
  const standIn = sharedResultStandIn(ctx, response.result);
  if (standIn) envelope.result = standIn as Record<string, unknown>;
  return envelope;
}

/** The results shared by the watch streams of each server (its services). */
const sharedResults = new WeakMap<SignetServices, SharedResults>();

function sharedResultsOf(services: SignetServices): SharedResults {
  let shared = sharedResults.get(services);
  if (!shared) {
    shared = new SharedResults();
    sharedResults.set(services, shared);
  }
  return shared;
}

/** What the envelope middleware adds to the context of the rest of the chain. */
export interface EnvelopeContext {
  signet: SignetCallInfo;
  /** What `meta.signet.prefetch` started, if the procedure has one. */
  prefetched?: Promise<unknown>;
  /** A job start's place under its client's cap on unfinished jobs, for `JobEngine.start`. */
  admission?: JobAdmission;
}

/**
 * The envelope-signature middleware (DESIGN 1.4). Checks 1-3 refuse unsigned; from check 4 on,
 * every refusal is signed with the key that verified the call. The rest of the chain (users'
 * middleware, the args check through the procedure's input, the resolver, the output check)
 * runs once checks 4-7 have passed, and its result comes back signed. A watch or a job start is
 * held to its client's cap (`ClientLimits`) before the nonce claim: a watch keeps its slot until
 * its stream ends, a start its reservation until its job is written or the call is over.
 */
export const envelopeSignature: TRPCMiddlewareFunction<
  SignetContext,
  SignetMeta,
  object,
  EnvelopeContext,
  unknown
> = async ({ ctx, meta, path, getRawInput, signal, next }) => {
  const { services } = ctx;
  const procedure = meta?.signet;
  if (!procedure) throw new Error(`procedure "${path}" was not built by createSignetRouter`);
  const raw = await getRawInput();
  const call = authenticate(
    procedure.kind === 'watch' ? withoutInjectedLastEventId(raw) : raw,
    path,
    services,
  );
  // What the call holds under its client's caps (only a watch or a job start holds anything).
  let stream = undefined as (() => void) | undefined;
  let admission = undefined as JobAdmission | undefined;
  try {
    const { envelope } = call;
    const prefetched = procedure.prefetch?.(envelope.client_id, envelope.args, services);
    // (Answered only if every check passes; until then nobody awaits it.)
    prefetched?.catch(() => {});
    const holdUnderCap = async () => {
      if (procedure.kind === 'watch') {
        stream = services.watchSlots.take(envelope.client_id, signal);
      } else if (procedure.kind === 'job') {
        admission = await services.jobs.admitStart(
          envelope.client_id,
          envelope.request_id,
          services.limits.unfinishedJobs,
        );
      }
    };
    const capped =
      procedure.kind === 'watch' ||
      (procedure.kind === 'job' && services.limits.unfinishedJobs !== Number.POSITIVE_INFINITY);
    await authorize(call, services, capped ? holdUnderCap : undefined);
    // (tRPC's types allow `ctx` or `getRawInput`; its middleware chain takes both at once.)
    const rest = {
      ctx: {
        signet: {
          clientId: envelope.client_id,
          requestId: envelope.request_id,
          tool: envelope.tool,
          kid: call.key.kid,
          serverId: call.serverId,
          envelope,
        },
        ...(prefetched ? { prefetched } : admission ? { admission } : {}),
      },
      getRawInput: async () => checkedArgs(envelope.args),
    };
    const result = await next(rest);
    if (!result.ok) throw result.error;
    const reply = signReply(procedure.kind, call, result.data, { release: stream, ctx, services });
    services.audit?.call(call, {
      status: procedure.kind === 'watch' ? 'stream' : (reply as SignedEnvelope).status,
    });
    return { ...result, data: reply };
  } catch (error) {
    stream?.();
    const refusal = refusalOf(error, services, path);
    refusal.envelope = call.respond(errorReply(refusal)).envelope;
    services.audit?.call(call, { status: 'error', reason: refusal.reason });
    throw refusal;
  } finally {
    admission?.release();
  }
};

/** How a watch's stream ends: its slot's `release`, its call's context, the server's services. */
interface WatchEnd {
  release: (() => void) | undefined;
  ctx: SignetContext;
  services: SignetServices;
}

/** What a procedure of each kind returns, as its signed reply. */
function signReply(
  kind: SignetProcedureKind,
  call: VerifiedCall,
  data: unknown,
  watch: WatchEnd,
): unknown {
  switch (kind) {
    case 'tool':
      return signedEnvelope(call.respond(success('ok', data as Record<string, unknown>)));
    case 'job': {
      // (What the job tool's resolver returned: the new job's id and its change-log position.)
      const { job_id, seq } = data as { job_id: string; seq: number };
      return signedEnvelope(
        call.respond({ ...success('accepted', { job_id }), job: { id: job_id, seq } }),
      );
    }
    case 'poll':
    case 'cancel':
      return signedEnvelope(call.respond(sequencedReply(data as SequencedJobState)));
    case 'watch':
      return signedUpdates(call, data as AsyncIterable<JobUpdate>, watch);
  }
}

function success(status: 'ok' | 'accepted', result: Record<string, unknown>): Reply {
  return { status, ok: true, result, error: null };
}

/** A job's state as a reply, with `job`: which job, and its place in the job's change log. */
function sequencedReply(state: SequencedJobState): Reply {
  return { ...jobStateToReply(state), job: { id: state.job_id, seq: state.seq } };
}

/**
 * One signed envelope per change of the job, each tracked with its event id (the cursor). An
 * update's result is canonicalized once for all the streams of the job (`SharedResults`); each
 * stream signs its own envelope around it. Before each, the keyring in force must still trust
 * the call: once a reload removed its client or key, the stream ends, and nothing more is signed
 * (W5). The stream's slot is given back once its response is over, however it ends (or by the
 * call's signal, should it never be read).
 */
async function* signedUpdates(
  call: VerifiedCall,
  updates: AsyncIterable<JobUpdate>,
  { release, ctx, services }: WatchEnd,
) {
  const shared = sharedResultsOf(services);
  try {
    for await (const { id, state } of updates) {
      if (!call.trustedBy(services.keyring())) {
        services.logger.info(
          { client_id: call.envelope.client_id, kid: call.key.kid },
          'watch ended: a keyring reload removed its key',
        );
        return;
      }
      const reply = sequencedReply(state);
      // (Only a done job's result, its output, can be large: the others are signed as usual.)
      const signed =
        state.status === 'done'
          ? sharedEnvelope(
              call.respondSharing(
                reply,
                shared.of(call.envelope.client_id, state.job_id, state.seq, reply, services.now()),
              ),
              ctx,
            )
          : signedEnvelope(call.respond(reply));
      yield tracked(id, signed);
      if (isTerminal(state.status)) return;
    }
  } finally {
    if (release) whenWatchResponseEnds(ctx, release);
  }
}

/**
 * The args as the procedure's input parser gets them. An own `__proto__` key is valid JSON, but
 * a schema or an assignment would turn it into a prototype or drop it, so the value a tool saw
 * would not be the value that was signed: such calls are refused (INVALID_ARGS).
 */
function checkedArgs(args: Record<string, unknown>): Record<string, unknown> {
  const protoKey = protoKeyPath(args);
  if (protoKey !== undefined) {
    throw new SignetError('INVALID_ARGS', `${protoKey}: "__proto__" is not accepted as a key`, {
      details: [{ path: protoKey, message: '"__proto__" is not accepted as a key' }],
    });
  }
  return args;
}

/** A schema's issues, when `cause` is a failed validation (zod's, or any Standard Schema's). */
function validationOf(cause: unknown): { issues: unknown[] } | undefined {
  const issues = (cause as { issues?: unknown } | undefined)?.issues;
  return Array.isArray(issues) ? (cause as { issues: unknown[] }) : undefined;
}

/**
 * Anything the rest of the chain threw, as a refusal with a reason code (issue #16): Signet's
 * own keep theirs; a failed args check is INVALID_ARGS and a failed output check TOOL_FAILED;
 * users' middleware may refuse with FORBIDDEN, TOO_MANY_REQUESTS or BAD_REQUEST; the rest is
 * INTERNAL, and only logged.
 */
function refusalOf(error: unknown, services: SignetServices, tool: string): SignetError {
  if (error instanceof SignetError) return error;
  if (!(error instanceof TRPCError)) return internal(error, services, tool);
  if (error.cause instanceof SignetError) return error.cause;
  const validation = validationOf(error.cause);
  if (validation && error.code === 'BAD_REQUEST') {
    const zodLike = validation as Parameters<typeof issuesOf>[0];
    return new SignetError('INVALID_ARGS', describeIssues(zodLike), {
      details: issuesOf(zodLike),
    });
  }
  if (validation && error.code === 'INTERNAL_SERVER_ERROR') {
    services.logger.error(
      { tool, issues: validation.issues },
      'tool output does not match its contract',
    );
    return new SignetError('TOOL_FAILED', 'the tool produced an invalid output');
  }
  switch (error.code) {
    case 'FORBIDDEN':
      return new SignetError('TOOL_NOT_ALLOWED', error.message);
    case 'TOO_MANY_REQUESTS':
      // (DESIGN 1.5: a 429 always says when to come back; the middleware did not, so soon.)
      return new SignetError('RATE_LIMITED', error.message, { retryAfter: 1 });
    case 'BAD_REQUEST':
      return new SignetError('INVALID_ARGS', error.message);
    default:
      return internal(error.cause ?? error, services, tool);
  }
}

function internal(error: unknown, services: SignetServices, tool: string): SignetError {
  services.logger.error({ err: error, tool }, 'a call failed inside the procedure');
  return new SignetError('INTERNAL', 'internal error');
}

/**
 * tRPC's own adapters copy a `Last-Event-ID` header into a subscription's input; it is not
 * signed, so it is dropped before the envelope is checked (Signet's front never adds it).
 */
function withoutInjectedLastEventId(raw: unknown): unknown {
  if (typeof raw === 'object' && raw !== null && 'lastEventId' in raw) {
    const { lastEventId: _dropped, ...rest } = raw as Record<string, unknown>;
    return rest;
  }
  return raw;
}

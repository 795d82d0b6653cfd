import type {
  AnyContract,
  ContractSet,
  JobContract,
  JobControlContract,
  ToolContract,
} from '@signet/contracts';
import {
  isTerminal,
  type JobState,
  jobStateToReply,
  type Reply,
  type ResponseEnvelope,
} from '@signet/protocol';
import {
  type TRPCBuiltRouter,
  type TRPCMutationProcedure,
  type TRPCSubscriptionProcedure,
  tracked,
} from '@trpc/server';
import type { z } from 'zod';
import {
  argsHash,
  authenticate,
  authorize,
  describeIssues,
  errorReply,
  issuesOf,
  protoKeyPath,
  type VerifiedCall,
} from './envelope.ts';
import { SignetError, StoreUnavailableError } from './errors.ts';
import { safeToolMessage } from './jobs/tool-error.ts';
import type { JobEngine, JobHandler, JobUpdate } from './jobs/types.ts';
import type { MaybePromise } from './stores/types.ts';
import { type SignetContext, type SignetErrorShape, t } from './trpc.ts';

/** What a tool handler knows of the call besides its arguments. */
export interface ToolCallContext {
  clientId: string;
  requestId: string;
  serverId: string;
}

export type ToolHandler<C extends ToolContract> = (
  args: z.output<C['input']>,
  ctx: ToolCallContext,
) => MaybePromise<z.input<C['output']>>;

/** The handlers a contract set needs: one per tool and per job; job control is built in. */
export type Handlers<C extends ContractSet> = {
  [K in keyof C as C[K] extends JobControlContract ? never : K]: C[K] extends ToolContract
    ? ToolHandler<C[K]>
    : C[K] extends JobContract
      ? JobHandler<z.output<C[K]['input']>, z.input<C[K]['output']>>
      : never;
};

/** What starting a job returns; `~output` only carries the job's output type to the client. */
export interface JobTicket<TOutput> {
  job_id: string;
  readonly '~output'?: TOutput;
}

type RootTypes = {
  ctx: SignetContext;
  meta: object;
  errorShape: SignetErrorShape;
  transformer: false;
};

type ProcedureFor<C extends AnyContract> = C extends ToolContract
  ? TRPCMutationProcedure<{
      input: z.input<C['input']>;
      output: z.output<C['output']>;
      meta: object;
    }>
  : C extends JobContract
    ? TRPCMutationProcedure<{
        input: z.input<C['input']>;
        output: JobTicket<z.output<C['output']>>;
        meta: object;
      }>
    : C extends JobControlContract
      ? C['operation'] extends 'watch'
        ? TRPCSubscriptionProcedure<{
            input: z.input<C['input']>;
            output: AsyncIterable<JobState, void, unknown>;
            meta: object;
          }>
        : TRPCMutationProcedure<{ input: z.input<C['input']>; output: JobState; meta: object }>
      : never;

/** The tRPC router type of a contract set: what the typed client is inferred from. */
export type SignetRouter<C extends ContractSet> = TRPCBuiltRouter<
  RootTypes,
  { [K in keyof C & string]: ProcedureFor<C[K]> }
>;

function jobNotFound(): SignetError {
  return new SignetError('JOB_NOT_FOUND', 'no such job');
}

/** Anything a tool throws becomes a SignetError fit for the client; the rest is only logged. */
function toSignetError(error: unknown, ctx: SignetContext, tool: string): SignetError {
  if (error instanceof SignetError) return error;
  if (error instanceof StoreUnavailableError) return error;
  const cause = error instanceof Error && error.cause !== undefined ? error.cause : error;
  if (cause instanceof SignetError) return cause;
  ctx.services.logger.error({ err: cause, tool }, 'tool failed');
  return new SignetError('TOOL_FAILED', safeToolMessage(cause, 'the tool failed'));
}

/**
 * Builds the tRPC router of a contract set: every procedure runs behind the envelope middleware
 * (DESIGN 1.4) and answers with a signed envelope; job tools go to the job engine.
 */
export function createSignetRouter<C extends ContractSet>(
  contracts: C,
  handlers: Handlers<C>,
): SignetRouter<C> {
  const record: Record<string, unknown> = {};
  for (const contract of Object.values(contracts)) {
    record[contract.name] = buildProcedure(
      contract,
      (handlers as Record<string, unknown>)[contract.name],
    );
  }
  return t.router(record as never) as unknown as SignetRouter<C>;
}

/** The job handlers of a contract set, for a job engine. */
export function jobDefinitions<C extends ContractSet>(contracts: C, handlers: Handlers<C>) {
  const definitions = new Map<string, { contract: JobContract; handler: JobHandler }>();
  for (const contract of Object.values(contracts)) {
    if (contract.kind !== 'job') continue;
    const handler = (handlers as unknown as Record<string, JobHandler | undefined>)[contract.name];
    if (typeof handler !== 'function') throw new Error(`no handler for job "${contract.name}"`);
    definitions.set(contract.name, { contract, handler });
  }
  return definitions;
}

function buildProcedure(contract: AnyContract, handler: unknown) {
  if (contract.kind !== 'job-control' && typeof handler !== 'function') {
    throw new Error(`no handler for tool "${contract.name}"`);
  }

  /** Runs checks 1-8 and signs the outcome of check 9 (or any refusal after check 3). */
  const envelopeMiddleware = t.middleware(async ({ ctx, type, getRawInput, next }) => {
    let raw = await getRawInput();
    if (type === 'subscription') raw = withoutInjectedLastEventId(raw);
    const call = authenticate(raw, contract.name, ctx.services);
    try {
      await authorize(call, ctx.services).catch((error: unknown) => {
        throw error instanceof SignetError ? error : new StoreUnavailableError(error);
      });
      const protoKey = protoKeyPath(call.envelope.args);
      if (protoKey !== undefined) {
        throw new SignetError('INVALID_ARGS', `${protoKey}: "__proto__" is not accepted as a key`, {
          details: [{ path: protoKey, message: '"__proto__" is not accepted as a key' }],
        });
      }
      const args = contract.input.safeParse(call.envelope.args);
      if (!args.success) {
        throw new SignetError('INVALID_ARGS', describeIssues(args.error), {
          details: issuesOf(args.error),
        });
      }
      // The tool sees the validated `args`, not the envelope. (No tRPC input parser: it would
      // only repeat this validation; the client's types come from `SignetRouter`.)
      const result = await next({ ctx: { call, args: args.data } });
      if (!result.ok) throw toSignetError(result.error, ctx, contract.name);
      return { ...result, data: respond(contract, call, result.data) };
    } catch (error) {
      const refusal = toSignetError(error, ctx, contract.name);
      refusal.envelope = call.respond(errorReply(refusal));
      throw refusal;
    }
  });

  const base = t.procedure.use(envelopeMiddleware);
  type Ctx = SignetContext & { call: VerifiedCall; args: Record<string, unknown> };
  const jobs = (ctx: SignetContext): JobEngine => ctx.services.jobs;

  switch (contract.kind) {
    case 'tool': {
      const run = handler as ToolHandler<ToolContract>;
      return base.mutation(async ({ ctx }) => {
        const { call, args: input } = ctx as Ctx;
        const output = await run(input as Record<string, unknown>, {
          clientId: call.envelope.client_id,
          requestId: call.envelope.request_id,
          serverId: call.serverId,
        });
        const checked = contract.output.safeParse(output);
        if (!checked.success) {
          ctx.services.logger.error(
            { tool: contract.name, issues: checked.error.issues },
            'tool output does not match its contract',
          );
          throw new SignetError('TOOL_FAILED', 'the tool produced an invalid output');
        }
        return checked.data;
      });
    }
    case 'job':
      return base.mutation(async ({ ctx }) => {
        const { call, args: input } = ctx as Ctx;
        const args = input as Record<string, unknown>;
        const { jobId } = await jobs(ctx).start({
          clientId: call.envelope.client_id,
          requestId: call.envelope.request_id,
          tool: contract.name,
          args,
          argsHash: argsHash(args),
        });
        return { job_id: jobId };
      });
    case 'job-control': {
      if (contract.operation === 'watch') {
        return base.subscription(async ({ ctx, signal }) => {
          const { call, args: input } = ctx as Ctx;
          const { job_id, after } = input as { job_id: string; after?: string };
          const updates = await jobs(ctx).watch(
            call.envelope.client_id,
            job_id,
            after,
            signal ?? new AbortController().signal,
          );
          if (!updates) throw jobNotFound();
          return updates;
        });
      }
      const operation = contract.operation;
      return base.mutation(async ({ ctx }) => {
        const { call, args: input } = ctx as Ctx;
        const { job_id } = input as { job_id: string };
        const engine = jobs(ctx);
        const state =
          operation === 'poll'
            ? await engine.get(call.envelope.client_id, job_id)
            : await engine.cancel(call.envelope.client_id, job_id);
        if (!state) throw jobNotFound();
        return state;
      });
    }
  }
}

/** Turns what a procedure returned into the signed response envelope(s) of DESIGN 1.2 / 1.7. */
function respond(contract: AnyContract, call: VerifiedCall, data: unknown): unknown {
  switch (contract.kind) {
    case 'tool':
      return call.respond(reply('ok', data as Record<string, unknown>));
    case 'job':
      return call.respond(reply('accepted', data as Record<string, unknown>));
    case 'job-control':
      if (contract.operation === 'watch') {
        return signUpdates(call, data as AsyncIterable<JobUpdate>);
      }
      return call.respond(jobStateToReply(data as JobState));
  }
}

async function* signUpdates(call: VerifiedCall, updates: AsyncIterable<JobUpdate>) {
  for await (const update of updates) {
    yield tracked(update.id, call.respond(jobStateToReply(update.state)) as ResponseEnvelope);
    if (isTerminal(update.state.status)) return;
  }
}

function reply(status: 'ok' | 'accepted', result: Record<string, unknown>): Reply {
  return { status, ok: true, result, error: null };
}

/** tRPC's SSE adapter copies a `Last-Event-ID` header into the input; it is not signed. */
function withoutInjectedLastEventId(raw: unknown): unknown {
  if (typeof raw === 'object' && raw !== null && 'lastEventId' in raw) {
    const { lastEventId: _dropped, ...rest } = raw as Record<string, unknown>;
    return rest;
  }
  return raw;
}

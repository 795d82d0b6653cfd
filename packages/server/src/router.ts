import type {
  AnyContract,
  ContractSet,
  JobContract,
  JobControlContract,
  ToolContract,
} from '@signet/contracts';
import type { JobState } from '@signet/protocol';
import type {
  TRPCBuiltRouter,
  TRPCMiddlewareFunction,
  TRPCMutationProcedure,
  TRPCSubscriptionProcedure,
} from '@trpc/server';
import type { z } from 'zod';
import { argsHash } from './envelope.ts';
import type { EnvelopeContext } from './envelope-middleware.ts';
import { SignetError } from './errors.ts';
import type { Handlers, ToolHandler } from './handlers.ts';
import { safeToolMessage } from './jobs/tool-error.ts';
import type { SignetServices } from './services.ts';
import {
  type SignetCallContext,
  type SignetContext,
  type SignetErrorShape,
  type SignetMeta,
  signedProcedure,
  t,
} from './trpc.ts';

export {
  type Handlers,
  jobDefinitions,
  type ToolCallContext,
  type ToolHandler,
} from './handlers.ts';

/** What starting a job returns; `~output` only carries the job's output type to the client. */
export interface JobTicket<TOutput> {
  job_id: string;
  readonly '~output'?: TOutput;
}

type RootTypes = {
  ctx: SignetContext;
  meta: SignetMeta;
  errorShape: SignetErrorShape;
  transformer: false;
};

type ProcedureFor<C extends AnyContract> = C extends ToolContract
  ? TRPCMutationProcedure<{
      input: z.input<C['input']>;
      output: z.output<C['output']>;
      meta: SignetMeta;
    }>
  : C extends JobContract
    ? TRPCMutationProcedure<{
        input: z.input<C['input']>;
        output: JobTicket<z.output<C['output']>>;
        meta: SignetMeta;
      }>
    : C extends JobControlContract
      ? C['operation'] extends 'watch'
        ? TRPCSubscriptionProcedure<{
            input: z.input<C['input']>;
            output: AsyncIterable<JobState, void, unknown>;
            meta: SignetMeta;
          }>
        : TRPCMutationProcedure<{ input: z.input<C['input']>; output: JobState; meta: SignetMeta }>
      : never;

/**
 * The tRPC router type of a contract set: what the typed client is inferred from. (Each
 * procedure's input on the wire is the signed envelope around these args; Signet's link wraps
 * and unwraps it.)
 */
export type SignetRouter<C extends ContractSet> = TRPCBuiltRouter<
  RootTypes,
  { [K in keyof C & string]: ProcedureFor<C[K]> }
>;

/**
 * A user's tRPC middleware for every Signet procedure. It runs once the call is authenticated
 * and its nonce spent (checks 2-7), before the args check; `ctx.signet` says who called what.
 * A throw refuses the call, signed (see `createSignetRouter`).
 */
export type SignetMiddleware = TRPCMiddlewareFunction<
  SignetCallContext & Partial<EnvelopeContext>,
  SignetMeta,
  object,
  object,
  unknown
>;

export interface SignetRouterOptions {
  /**
   * tRPC middleware added to every Signet procedure, in order: logging, tracing, metrics, a
   * policy check. A throw becomes a signed refusal: a `SignetError` keeps its reason; tRPC's
   * FORBIDDEN is 403 TOOL_NOT_ALLOWED, TOO_MANY_REQUESTS 429 RATE_LIMITED, BAD_REQUEST 400
   * INVALID_ARGS, anything else 500 INTERNAL.
   */
  middleware?: readonly SignetMiddleware[];
}

type Resolve<T> = (opts: {
  ctx: SignetCallContext & Partial<EnvelopeContext>;
  input: Record<string, unknown>;
  signal: AbortSignal | undefined;
}) => Promise<T>;

/**
 * Builds the tRPC router of a contract set. Every procedure comes from `signedProcedure` (the
 * envelope checks of DESIGN 1.4, then the users' middleware), checks its args with the
 * contract's input schema, and answers with a signed envelope; job tools go to the job engine.
 */
export function createSignetRouter<C extends ContractSet>(
  contracts: C,
  handlers: Handlers<C>,
  opts: SignetRouterOptions = {},
): SignetRouter<C> {
  let base = signedProcedure;
  for (const middleware of opts.middleware ?? []) base = base.use(middleware as never);
  const procedures: Record<string, unknown> = {};
  for (const contract of Object.values(contracts)) {
    procedures[contract.name] = procedureFor(base, contract, handlers as Record<string, unknown>);
  }
  return t.router(procedures as never) as unknown as SignetRouter<C>;
}

function procedureFor(
  base: typeof signedProcedure,
  contract: AnyContract,
  handlers: Readonly<Record<string, unknown>>,
) {
  const handler = handlers[contract.name];
  if (contract.kind !== 'job-control' && typeof handler !== 'function') {
    throw new Error(`no handler for tool "${contract.name}"`);
  }
  // (The builder's types track each step; the router's type is stated by SignetRouter.)
  const input = (kind: NonNullable<SignetMeta['signet']>) =>
    base.meta({ signet: kind }).input(contract.input) as unknown as {
      output(schema: unknown): { mutation(resolve: Resolve<unknown>): unknown };
      mutation(resolve: Resolve<unknown>): unknown;
      subscription(resolve: Resolve<unknown>): unknown;
    };
  switch (contract.kind) {
    case 'tool':
      return input({ kind: 'tool' })
        .output(contract.output)
        .mutation(runTool(contract, handler as ToolHandler<ToolContract>));
    case 'job':
      return input({ kind: 'job' }).mutation(async ({ ctx, input: args }) => {
        const { jobId } = await ctx.services.jobs.start({
          clientId: ctx.signet.clientId,
          requestId: ctx.signet.requestId,
          tool: contract.name,
          args,
          argsHash: argsHash(args),
          ...(ctx.admission ? { admission: ctx.admission } : {}),
        });
        return { job_id: jobId };
      });
    case 'job-control':
      switch (contract.operation) {
        case 'poll':
          return input({ kind: 'poll', prefetch: readJob }).mutation(async ({ ctx, input: args }) =>
            found(
              await ((ctx.prefetched as Promise<JobState | undefined> | undefined) ??
                ctx.services.jobs.get(ctx.signet.clientId, jobIdOf(args))),
            ),
          );
        case 'cancel':
          return input({ kind: 'cancel' }).mutation(async ({ ctx, input: args }) =>
            found(await ctx.services.jobs.cancel(ctx.signet.clientId, jobIdOf(args))),
          );
        case 'watch':
          return input({ kind: 'watch' }).subscription(async ({ ctx, input: args, signal }) => {
            const { after } = args as { after?: string };
            const updates = await ctx.services.jobs.watch(
              ctx.signet.clientId,
              jobIdOf(args),
              after,
              signal ?? new AbortController().signal,
            );
            return found(updates);
          });
      }
  }
}

function runTool(contract: ToolContract, handler: ToolHandler<ToolContract>): Resolve<unknown> {
  return async ({ ctx, input: args }) => {
    try {
      return await handler(args, {
        clientId: ctx.signet.clientId,
        requestId: ctx.signet.requestId,
        serverId: ctx.signet.serverId,
      });
    } catch (error) {
      if (error instanceof SignetError) throw error;
      ctx.services.logger.error({ err: error, tool: contract.name }, 'tool failed');
      throw new SignetError('TOOL_FAILED', safeToolMessage(error, 'the tool failed'));
    }
  };
}

/** poll_job's read, started alongside the nonce claim (see SignetMeta's `prefetch`). */
async function readJob(
  clientId: string,
  args: Record<string, unknown>,
  services: SignetServices,
): Promise<JobState | undefined> {
  return typeof args.job_id === 'string' ? services.jobs.get(clientId, args.job_id) : undefined;
}

function jobIdOf(args: Record<string, unknown>): string {
  return (args as { job_id: string }).job_id;
}

/** A job the caller may see, or 404 (also for another client's job). */
function found<T>(value: T | undefined): T {
  if (value === undefined) throw new SignetError('JOB_NOT_FOUND', 'no such job');
  return value;
}

import type {
  AnyContract,
  BuiltInOperation,
  ContractSet,
  SignetRouter,
  ToolContract,
} from '@signet/contracts';
import type { TRPCMiddlewareFunction } from '@trpc/server';
import { builtInAnswers } from './built-ins.ts';
import { argsHash } from './envelope.ts';
import type { EnvelopeContext } from './envelope-middleware.ts';
import { SignetError } from './errors.ts';
import { checkHandlers, type Handlers, type ToolHandler } from './handlers.ts';
import { safeToolMessage } from './jobs/tool-error.ts';
import type { SequencedJobState } from './jobs/types.ts';
import type { SignetServices } from './services.ts';
import {
  measuredProcedure,
  type SignetCallContext,
  type SignetMeta,
  signedProcedure,
  t,
} from './trpc.ts';

export type { SignetRouter } from '@signet/contracts';

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
  return buildSignetRouter(contracts, handlers, opts, { measured: false });
}

/**
 * `createSignetRouter`, and (`measured`) with the calls timed and counted into
 * `services.metrics` first of all, so that checks 1-3's refusals count too (createSignet's).
 */
export function buildSignetRouter<C extends ContractSet>(
  contracts: C,
  handlers: Handlers<C>,
  opts: SignetRouterOptions,
  internal: { measured: boolean },
): SignetRouter<C> {
  checkHandlers(contracts, handlers);
  let base = internal.measured ? measuredProcedure : signedProcedure;
  for (const middleware of opts.middleware ?? []) base = base.use(middleware as never);
  const answers = builtInAnswers(contracts);
  const builtIn: Record<BuiltInOperation, ServedToolHandler> = {
    identity: (_args, call, services) => answers.identity(call.serverId, services),
    manifest: () => answers.manifest(),
  };
  const procedures: Record<string, unknown> = {};
  for (const contract of Object.values(contracts)) {
    const handler =
      contract.kind === 'tool' && contract.builtIn
        ? builtIn[contract.builtIn]
        : (handlers as Record<string, unknown>)[contract.name];
    procedures[contract.name] = procedureFor(base, contract, handler);
  }
  return t.router(procedures as never) as unknown as SignetRouter<C>;
}

function procedureFor(base: typeof signedProcedure, contract: AnyContract, handler: unknown) {
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
        .mutation(runTool(contract, handler as ServedToolHandler));
    case 'job':
      return input({ kind: 'job' }).mutation(async ({ ctx, input: args }) => {
        const { jobId, seq } = await ctx.services.jobs.start({
          clientId: ctx.signet.clientId,
          requestId: ctx.signet.requestId,
          tool: contract.name,
          args,
          argsHash: argsHash(args),
          ...(ctx.admission ? { admission: ctx.admission } : {}),
        });
        // (The envelope middleware signs `job_id` as the result, and `seq` into `job`.)
        return { job_id: jobId, seq };
      });
    case 'job-control':
      switch (contract.operation) {
        case 'poll':
          return input({ kind: 'poll', prefetch: readJob }).mutation(async ({ ctx, input: args }) =>
            found(
              await ((ctx.prefetched as Promise<SequencedJobState | undefined> | undefined) ??
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

/** A tool handler, here with the services too (which only the built-in tools use). */
type ServedToolHandler = (
  ...args: [...Parameters<ToolHandler<ToolContract>>, services: SignetServices]
) => ReturnType<ToolHandler<ToolContract>>;

function runTool(contract: ToolContract, handler: ServedToolHandler): Resolve<unknown> {
  return async ({ ctx, input: args }) => {
    try {
      const call = {
        clientId: ctx.signet.clientId,
        requestId: ctx.signet.requestId,
        serverId: ctx.signet.serverId,
      };
      return await handler(args, call, ctx.services);
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
): Promise<SequencedJobState | undefined> {
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

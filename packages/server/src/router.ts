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
  type SignedResponse,
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
import type { JobHandler, JobUpdate } from './jobs/types.ts';
import type { SignetServices } from './services.ts';
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
function toSignetError(error: unknown, services: SignetServices, tool: string): SignetError {
  if (error instanceof SignetError) return error;
  if (error instanceof StoreUnavailableError) return error;
  services.logger.error({ err: error, tool }, 'tool failed');
  return new SignetError('TOOL_FAILED', safeToolMessage(error, 'the tool failed'));
}

/** A refusal after check 3: the client gets it signed, with the key that verified its call. */
function signedRefusal(
  call: VerifiedCall,
  error: unknown,
  services: SignetServices,
  tool: string,
): SignetError {
  const refusal = toSignetError(error, services, tool);
  refusal.envelope = call.respond(errorReply(refusal)).envelope;
  return refusal;
}

/**
 * One signed call, from the parsed body to the signed response (DESIGN 1.4 checks 1-9). The
 * HTTP front runs it directly; the tRPC procedure of the same tool runs the same function.
 */
export type SignedCall = (raw: unknown, services: SignetServices) => Promise<SignedResponse>;

/** The entry points of each router built by `createSignetRouter`, by tool name. */
const entryPointsByRouter = new WeakMap<
  object,
  { calls: ReadonlyMap<string, SignedCall>; watches: ReadonlyMap<string, SignedWatch> }
>();

function entryPointsOf(router: object) {
  const entryPoints = entryPointsByRouter.get(router);
  if (!entryPoints) throw new Error('not a router built by createSignetRouter');
  return entryPoints;
}

/** The signed calls (every tool but the watch_job subscription) of a Signet router. */
export function signedCallsOf(router: object): ReadonlyMap<string, SignedCall> {
  return entryPointsOf(router).calls;
}

/** The watch_job subscriptions of a Signet router, by tool name. */
export function signedWatchesOf(router: object): ReadonlyMap<string, SignedWatch> {
  return entryPointsOf(router).watches;
}

/** One update of a watch_job stream: its event id (the resume cursor) and its signed envelope. */
export interface SignedUpdate {
  id: string;
  signed: SignedResponse;
}

/**
 * One watch_job call: checks 1-8, then the job's signed updates until it ends (or `signal`
 * aborts). The HTTP front streams them in tRPC's SSE format; the tRPC subscription of the same
 * tool runs the same function.
 */
export type SignedWatch = (
  raw: unknown,
  services: SignetServices,
  signal: AbortSignal,
) => Promise<AsyncIterable<SignedUpdate>>;

/**
 * Builds the tRPC router of a contract set: every procedure runs behind the envelope checks
 * (DESIGN 1.4) and answers with a signed envelope; job tools go to the job engine.
 */
export function createSignetRouter<C extends ContractSet>(
  contracts: C,
  handlers: Handlers<C>,
): SignetRouter<C> {
  const procedures: Record<string, unknown> = {};
  const calls = new Map<string, SignedCall>();
  const watches = new Map<string, SignedWatch>();
  for (const contract of Object.values(contracts)) {
    const handler = (handlers as Record<string, unknown>)[contract.name];
    if (contract.kind === 'job-control' && contract.operation === 'watch') {
      const watch = signedWatch(contract);
      watches.set(contract.name, watch);
      procedures[contract.name] = withRawInput.subscription(async ({ ctx, signal }) => {
        const updates = await watch(ctx.raw, ctx.services, signal ?? new AbortController().signal);
        return trackedUpdates(updates);
      });
      continue;
    }
    const run = signedCall(contract, handler);
    calls.set(contract.name, run);
    procedures[contract.name] = withRawInput.mutation(
      async ({ ctx }) => (await run(ctx.raw, ctx.services)).envelope,
    );
  }
  const router = t.router(procedures as never) as unknown as SignetRouter<C>;
  entryPointsByRouter.set(router, { calls, watches });
  return router;
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

/** No tRPC input parser: the body is the envelope, checked and unwrapped by the call itself. */
const withRawInput = t.procedure.use(async ({ getRawInput, next }) =>
  next({ ctx: { raw: await getRawInput() } }),
);

/**
 * Checks 1-8: an authenticated, authorized call and its validated `args`. The nonce claim
 * (check 6) is sent to the store first; the args are checked meanwhile, and `begin` (given valid
 * args) may start reading the store alongside the claim, so that both share one round trip. Each
 * refusal still comes in the order of the checks, and nothing is written or revealed until they
 * have all passed.
 */
async function admit<T>(
  contract: AnyContract,
  raw: unknown,
  services: SignetServices,
  /** Must not throw: `authorized` is awaited after it (a failure belongs in what it returns). */
  begin?: (call: VerifiedCall, args: Record<string, unknown>) => T,
): Promise<{ call: VerifiedCall; args: Record<string, unknown>; begun: T | undefined }> {
  const call = authenticate(raw, contract.name, services);
  try {
    const authorized = authorize(call, services).catch((error: unknown) => {
      throw error instanceof SignetError ? error : new StoreUnavailableError(error);
    });
    const checked = checkArgs(contract, call.envelope.args);
    const begun = checked instanceof SignetError ? undefined : begin?.(call, checked);
    await authorized;
    if (checked instanceof SignetError) throw checked;
    return { call, args: checked, begun };
  } catch (error) {
    throw signedRefusal(call, error, services, contract.name);
  }
}

/** Check 8: the args, as the tool's schema parses them, or the refusal. */
function checkArgs(contract: AnyContract, raw: unknown): Record<string, unknown> | SignetError {
  const protoKey = protoKeyPath(raw);
  if (protoKey !== undefined) {
    return new SignetError('INVALID_ARGS', `${protoKey}: "__proto__" is not accepted as a key`, {
      details: [{ path: protoKey, message: '"__proto__" is not accepted as a key' }],
    });
  }
  const args = contract.input.safeParse(raw);
  if (!args.success) {
    return new SignetError('INVALID_ARGS', describeIssues(args.error), {
      details: issuesOf(args.error),
    });
  }
  return args.data as Record<string, unknown>;
}

/** What check 9 does for each kind of contract: its signed reply. */
function signedCall(contract: AnyContract, handler: unknown): SignedCall {
  const begin = executor(contract, handler);
  return async (raw, services) => {
    const { call, begun } = await admit(contract, raw, services, (call, args) =>
      begin(call, args, services),
    );
    try {
      return call.respond(await begun!());
    } catch (error) {
      throw signedRefusal(call, error, services, contract.name);
    }
  };
}

/**
 * Check 9 in two steps. The first runs once the args are valid, alongside the nonce claim: it
 * may start reads, nothing more. What it returns runs once every check has passed, and gives
 * the reply.
 */
type Executor = (
  call: VerifiedCall,
  args: Record<string, unknown>,
  services: SignetServices,
) => () => Promise<Reply>;

function executor(contract: AnyContract, handler: unknown): Executor {
  if (contract.kind !== 'job-control' && typeof handler !== 'function') {
    throw new Error(`no handler for tool "${contract.name}"`);
  }
  switch (contract.kind) {
    case 'tool': {
      const run = handler as ToolHandler<ToolContract>;
      return (call, args, services) => async () => {
        const output = await run(args, {
          clientId: call.envelope.client_id,
          requestId: call.envelope.request_id,
          serverId: call.serverId,
        });
        const checked = contract.output.safeParse(output);
        if (!checked.success) {
          services.logger.error(
            { tool: contract.name, issues: checked.error.issues },
            'tool output does not match its contract',
          );
          throw new SignetError('TOOL_FAILED', 'the tool produced an invalid output');
        }
        return reply('ok', checked.data as Record<string, unknown>);
      };
    }
    case 'job':
      return (call, args, services) => async () => {
        const { jobId } = await services.jobs.start({
          clientId: call.envelope.client_id,
          requestId: call.envelope.request_id,
          tool: contract.name,
          args,
          argsHash: argsHash(args),
        });
        return reply('accepted', { job_id: jobId });
      };
    case 'job-control': {
      if (contract.operation === 'poll') {
        return (call, args, services) => {
          // A read: it goes out with the nonce claim, and is answered only if the call passes.
          // (Async, so that a failure is a rejection, handled here until the call awaits it.)
          const state = (async () =>
            services.jobs.get(call.envelope.client_id, (args as { job_id: string }).job_id))();
          state.catch(() => {});
          return async () => jobReply(await state);
        };
      }
      return (call, args, services) => async () =>
        jobReply(
          await services.jobs.cancel(call.envelope.client_id, (args as { job_id: string }).job_id),
        );
    }
  }
}

function jobReply(state: JobState | undefined): Reply {
  if (!state) throw jobNotFound();
  return jobStateToReply(state);
}

/** watch_job: one signed envelope per change of the job, until it ends. */
function signedWatch(contract: JobControlContract): SignedWatch {
  return async (raw, services, signal) => {
    const { call, args } = await admit(contract, withoutInjectedLastEventId(raw), services);
    try {
      const { job_id, after } = args as { job_id: string; after?: string };
      const updates = await services.jobs.watch(call.envelope.client_id, job_id, after, signal);
      if (!updates) throw jobNotFound();
      return signUpdates(call, updates);
    } catch (error) {
      throw signedRefusal(call, error, services, contract.name);
    }
  };
}

async function* signUpdates(
  call: VerifiedCall,
  updates: AsyncIterable<JobUpdate>,
): AsyncGenerator<SignedUpdate> {
  for await (const update of updates) {
    yield { id: update.id, signed: call.respond(jobStateToReply(update.state)) };
    if (isTerminal(update.state.status)) return;
  }
}

/** The updates as tRPC's subscription yields them: the event id travels with each. */
async function* trackedUpdates(updates: AsyncIterable<SignedUpdate>) {
  for await (const update of updates) yield tracked(update.id, update.signed.envelope);
}

function reply(status: 'ok' | 'accepted', result: Record<string, unknown>): Reply {
  return { status, ok: true, result, error: null };
}

/**
 * tRPC's own adapters (serving this router elsewhere) copy a `Last-Event-ID` header into the
 * input; it is not signed. Signet's HTTP front does not, and drops a client's own likewise.
 */
function withoutInjectedLastEventId(raw: unknown): unknown {
  if (typeof raw === 'object' && raw !== null && 'lastEventId' in raw) {
    const { lastEventId: _dropped, ...rest } = raw as Record<string, unknown>;
    return rest;
  }
  return raw;
}

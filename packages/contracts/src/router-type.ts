import type { JobState, SignetErrorShape } from '@signet/protocol';
import type {
  TRPCBuiltRouter,
  TRPCMutationProcedure,
  TRPCSubscriptionProcedure,
} from '@trpc/server';
import type { z } from 'zod';
import type {
  AnyContract,
  ContractSet,
  JobContract,
  JobControlContract,
  ToolContract,
} from './define.ts';

/** What starting a job returns; `~output` only carries the job's output type to the client. */
export interface JobTicket<TOutput> {
  job_id: string;
  readonly '~output'?: TOutput;
}

/** What every request to a Signet router needs: the context that `createSignet` makes. */
export interface SignetRouterContext {
  readonly services: unknown;
}

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

/**
 * The tRPC router type of a contract set: what the typed client is inferred from, with no need
 * of the server's code. (On the wire each procedure's input is the signed envelope around these
 * args; Signet's client link wraps and unwraps it.)
 */
export type SignetRouter<C extends ContractSet> = TRPCBuiltRouter<
  {
    ctx: SignetRouterContext;
    meta: object;
    errorShape: SignetErrorShape;
    transformer: false;
  },
  { [K in keyof C & string]: ProcedureFor<C[K]> }
>;

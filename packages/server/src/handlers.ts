import type { ContractSet, JobContract, JobControlContract, ToolContract } from '@signet/contracts';
import type { z } from 'zod';
import type { JobDefinition, JobHandler } from './jobs/types.ts';
import type { MaybePromise } from './stores/types.ts';

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

/** The job handlers of a contract set, for a job engine. */
export function jobDefinitions<C extends ContractSet>(
  contracts: C,
  handlers: Handlers<C>,
): Map<string, JobDefinition> {
  const definitions = new Map<string, JobDefinition>();
  for (const contract of Object.values(contracts)) {
    if (contract.kind !== 'job') continue;
    const handler = (handlers as unknown as Record<string, JobHandler | undefined>)[contract.name];
    if (typeof handler !== 'function') throw new Error(`no handler for job "${contract.name}"`);
    definitions.set(contract.name, { contract, handler });
  }
  return definitions;
}

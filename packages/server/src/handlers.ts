import {
  type BuiltInOperation,
  type ContractSet,
  isBuiltInContract,
  type JobContract,
  type JobControlContract,
  type ToolContract,
} from '@signet/contracts';
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

/** The contracts the server answers itself: job control and `server_identity`. */
type BuiltIn = JobControlContract | { builtIn: BuiltInOperation };

/**
 * The handlers a contract set needs: one per tool and per job, and none for the built-in
 * tools, which the server answers itself.
 */
export type Handlers<C extends ContractSet> = {
  [K in keyof C as C[K] extends BuiltIn ? never : K]: C[K] extends ToolContract
    ? ToolHandler<C[K]>
    : C[K] extends JobContract
      ? JobHandler<z.output<C[K]['input']>, z.input<C[K]['output']>>
      : never;
};

/**
 * Checks that `handlers` has a function for every tool and job of `contracts`, and nothing
 * else: a handler for a built-in tool or for no tool at all is a mistake worth stopping for.
 */
export function checkHandlers(contracts: ContractSet, handlers: object): void {
  for (const name of Object.keys(handlers)) {
    const contract = Object.hasOwn(contracts, name) ? contracts[name] : undefined;
    if (!contract) throw new Error(`a handler for "${name}", which is not in the contracts`);
    if (isBuiltInContract(contract)) {
      throw new Error(`a handler for "${name}", which the server answers itself`);
    }
  }
  for (const contract of Object.values(contracts)) {
    if (isBuiltInContract(contract)) continue;
    const handler = (handlers as Record<string, unknown>)[contract.name];
    if (typeof handler !== 'function') throw new Error(`no handler for "${contract.name}"`);
  }
}

/** The job handlers of a contract set, for a job engine. */
export function jobDefinitions<C extends ContractSet>(
  contracts: C,
  handlers: Handlers<C>,
): Map<string, JobDefinition> {
  checkHandlers(contracts, handlers);
  const definitions = new Map<string, JobDefinition>();
  for (const contract of Object.values(contracts)) {
    if (contract.kind !== 'job') continue;
    const handler = (handlers as unknown as Record<string, JobHandler>)[contract.name]!;
    definitions.set(contract.name, { contract, handler });
  }
  return definitions;
}

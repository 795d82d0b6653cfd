import { BUILT_IN_CONTRACTS, type BuiltInContract, isBuiltInName } from './built-ins.ts';
import type { AnyContract, UserContract } from './define.ts';

/** The set of `T`'s contracts and the built-in tools, keyed by name. */
export type ContractSetOf<T extends readonly AnyContract[]> = {
  readonly [C in BuiltInContract | T[number] as C['name']]: C;
};

/**
 * `unknown` when every name in `T` is new; otherwise a type that names the clash, so that the
 * call does not compile (see `contractSet`).
 */
type UniqueNames<
  T extends readonly AnyContract[],
  Seen extends string = BuiltInContract['name'],
> = T extends readonly [infer Head extends AnyContract, ...infer Rest extends AnyContract[]]
  ? Head['name'] extends Seen
    ? { error: `two contracts are named "${Head['name']}"` }
    : UniqueNames<Rest, Seen | Head['name']>
  : unknown;

/**
 * Collects a server's tools and jobs into a contract set keyed by name, with the built-in tools
 * (`server_identity`, `poll_job`, `cancel_job`, `watch_job`) added. Two contracts with one name,
 * or one named like a built-in tool, are refused: a type error, and a throw at run time.
 */
export function contractSet<const T extends readonly UserContract[]>(
  ...contracts: T & UniqueNames<T>
): ContractSetOf<T> {
  const set: Record<string, AnyContract> = {};
  for (const contract of BUILT_IN_CONTRACTS) set[contract.name] = contract;
  for (const contract of contracts as readonly AnyContract[]) {
    if (isBuiltInName(contract.name)) {
      throw new Error(`"${contract.name}" is a built-in tool: name the contract otherwise`);
    }
    if (Object.hasOwn(set, contract.name)) {
      throw new Error(`two contracts are named "${contract.name}"`);
    }
    if ((contract.kind !== 'tool' && contract.kind !== 'job') || 'builtIn' in contract) {
      throw new Error(`"${contract.name}" is not a tool or a job: use defineTool or defineJob`);
    }
    set[contract.name] = contract;
  }
  return Object.freeze(set) as ContractSetOf<T>;
}

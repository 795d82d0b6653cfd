import type { z } from 'zod';

/** A JSON-object zod schema: every tool takes and returns a JSON object. */
export type ObjectSchema = z.ZodType<Record<string, unknown>, Record<string, unknown>>;

interface ContractBase<TName extends string, TInput extends ObjectSchema> {
  name: TName;
  description: string;
  input: TInput;
}

/** A tool that answers in the call itself. */
export interface ToolContract<
  TName extends string = string,
  TInput extends ObjectSchema = ObjectSchema,
  TOutput extends ObjectSchema = ObjectSchema,
> extends ContractBase<TName, TInput> {
  kind: 'tool';
  output: TOutput;
}

/** A tool whose call starts a job; the job's output is `output`. */
export interface JobContract<
  TName extends string = string,
  TInput extends ObjectSchema = ObjectSchema,
  TOutput extends ObjectSchema = ObjectSchema,
> extends ContractBase<TName, TInput> {
  kind: 'job';
  output: TOutput;
  /** Run again once (rather than end as INTERRUPTED) when the process running it dies. */
  retryable: boolean;
}

/** The built-in tools that report on or steer a job (DESIGN 1.6). */
export type JobControlOperation = 'poll' | 'cancel' | 'watch';

export interface JobControlContract<
  TName extends string = string,
  TInput extends ObjectSchema = ObjectSchema,
  TOperation extends JobControlOperation = JobControlOperation,
> extends ContractBase<TName, TInput> {
  kind: 'job-control';
  operation: TOperation;
  output: ObjectSchema;
}

export type AnyContract = ToolContract | JobContract | JobControlContract;
export type ContractSet = { readonly [name: string]: AnyContract };

export function defineTool<
  const TName extends string,
  TInput extends ObjectSchema,
  TOutput extends ObjectSchema,
>(def: {
  name: TName;
  description: string;
  input: TInput;
  output: TOutput;
}): ToolContract<TName, TInput, TOutput> {
  return { kind: 'tool', ...def };
}

export function defineJob<
  const TName extends string,
  TInput extends ObjectSchema,
  TOutput extends ObjectSchema,
>(def: {
  name: TName;
  description: string;
  input: TInput;
  output: TOutput;
  retryable?: boolean;
}): JobContract<TName, TInput, TOutput> {
  return { kind: 'job', ...def, retryable: def.retryable ?? false };
}

export function defineJobControl<
  const TName extends string,
  TInput extends ObjectSchema,
  const TOperation extends JobControlOperation,
>(def: {
  name: TName;
  description: string;
  operation: TOperation;
  input: TInput;
  output: ObjectSchema;
}): JobControlContract<TName, TInput, TOperation> {
  return { kind: 'job-control', ...def };
}

/** Collects contracts into a set keyed by name, refusing duplicates. */
export function contractSet<const T extends readonly AnyContract[]>(
  ...contracts: T
): { readonly [C in T[number] as C['name']]: C } {
  const set: Record<string, AnyContract> = {};
  for (const contract of contracts) {
    if (Object.hasOwn(set, contract.name)) {
      throw new Error(`two contracts are named "${contract.name}"`);
    }
    set[contract.name] = contract;
  }
  return set as { readonly [C in T[number] as C['name']]: C };
}

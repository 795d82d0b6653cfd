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
  /** Set on the server's own tools (`server_identity`): the server answers them, not a handler. */
  builtIn?: BuiltInOperation;
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

/** What a built-in tool that is not job control does: say who the server is, or list its tools. */
export type BuiltInOperation = 'identity' | 'manifest';

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

/** True for the tools every server answers itself: job control, `server_identity`, `list_tools`. */
export function isBuiltInContract(contract: AnyContract): boolean {
  return contract.kind === 'job-control' || (contract.kind === 'tool' && !!contract.builtIn);
}
/** A contract a user writes: a tool or a job (the built-in tools come with every set). */
export type UserContract = ToolContract | JobContract;
export type ContractSet = { readonly [name: string]: AnyContract };

/** A tool that answers in the call: `client.<name>.mutate(args)` resolves to its output. */
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

/** A tool whose call starts a job: the call answers `{job_id}`, the job ends with `output`. */
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

import {
  type JobControlClient,
  JobFailedError,
  jobHandle,
  type ResponseProblem,
  signetReason,
} from '@signet/client';
import {
  type AnyContract,
  type BuiltInName,
  type ContractSet,
  isBuiltInContract,
  type JobContract,
} from '@signet/contracts';
import type { JobErrorCode, JobProgress, ReasonCode } from '@signet/protocol';
import { type Tool, tool } from 'ai';
import type { z } from 'zod';

/** The names a model may call: every tool and job of the set, not the built-in tools. */
export type SignetToolName<C extends ContractSet> = Exclude<keyof C & string, BuiltInName>;

/**
 * One AI SDK tool per user contract. The input is what the SDK hands `execute` once the model's
 * arguments passed the contract's schema (its parsed form); the output is the tool's output, or
 * for a job the job's output (never its ticket: the tool waits for the job).
 */
export type SignetTools<C extends ContractSet> = {
  [K in SignetToolName<C>]: Tool<z.output<C[K]['input']>, z.output<C[K]['output']>>;
};

/**
 * What `signetTools` needs of a client: a mutation per tool and job control. The typed client of
 * `createSignetClient<SignetRouter<typeof tools>>` is one; a client of another set is a type
 * error. (Property, not method, syntax: the inputs are then checked both ways.)
 */
export type SignetToolsClient<C extends ContractSet> = JobControlClient & {
  [K in SignetToolName<C>]: {
    mutate: (
      input: z.input<C[K]['input']>,
      opts?: { signal?: AbortSignal },
    ) => Promise<C[K] extends JobContract ? { job_id: string } : z.output<C[K]['output']>>;
  };
};

/** A progress report of a running job, with the tool call it belongs to. */
export interface SignetProgressEvent {
  toolName: string;
  toolCallId: string;
  jobId: string;
  progress: JobProgress;
}

export interface SignetToolsOptions {
  /**
   * Called with every progress report of a job a model started, while its tool call waits for
   * the job. (Not a preliminary tool result: those share the tool's output type, which would
   * then no longer be the job's exact output type.)
   */
  onProgress?: (event: SignetProgressEvent) => void;
}

/** Why a call failed: the server's reason code, the client's refusal of a response, a job's end. */
export type SignetToolReason = ReasonCode | ResponseProblem | JobErrorCode | 'CANCELLED';

/**
 * A refused or failed call, thrown from `execute`. The AI SDK turns a throwing `execute` into a
 * tool-error part whose text is this message, so the model reads the reason code and can react
 * (fix its arguments, give up, tell the user) instead of the run crashing.
 */
export class SignetToolError extends Error {
  override name = 'SignetToolError';
  constructor(
    readonly toolName: string,
    /** `undefined` when there is none: a transport failure (e.g. the server is unreachable). */
    readonly reason: SignetToolReason | undefined,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

function toolError(toolName: string, error: unknown): SignetToolError {
  const reason: SignetToolReason | undefined =
    error instanceof JobFailedError ? error.code : signetReason(error);
  const detail = error instanceof Error ? error.message : String(error);
  const message = reason
    ? `${toolName} failed: ${reason} (${detail})`
    : `${toolName} failed: ${detail}`;
  return new SignetToolError(toolName, reason, message, { cause: error });
}

type Mutate = (input: unknown, opts?: { signal?: AbortSignal }) => Promise<unknown>;

/**
 * Vercel AI SDK tools for a Signet client: `generateText({ model, tools: signetTools(client,
 * tools) })`. Every call the model makes is a signed call whose answer is verified; a job tool
 * starts the job and waits for its output; a refusal reaches the model as a tool error naming
 * its reason code.
 */
export function signetTools<C extends ContractSet>(
  client: NoInfer<SignetToolsClient<C>>,
  contracts: C,
  opts: SignetToolsOptions = {},
): SignetTools<C> {
  const tools: Record<string, Tool> = {};
  for (const contract of Object.values(contracts) as AnyContract[]) {
    // The built-in tools are the agent's plumbing (identity, job control), not the model's.
    if (isBuiltInContract(contract)) continue;
    const mutate = (client as unknown as Record<string, { mutate: Mutate }>)[contract.name]!.mutate;
    tools[contract.name] =
      contract.kind === 'job'
        ? jobTool(contract, mutate, client, opts)
        : tool<Record<string, unknown>, unknown>({
            description: contract.description,
            inputSchema: contract.input,
            outputSchema: contract.output,
            execute: async (input, { abortSignal }) => {
              try {
                return await mutate(input, abortSignal ? { signal: abortSignal } : undefined);
              } catch (error) {
                // An abort is the caller's doing, not a refusal: it ends with the abort's reason.
                if (abortSignal?.aborted) throw abortSignal.reason;
                throw toolError(contract.name, error);
              }
            },
          });
  }
  return tools as SignetTools<C>;
}

function jobTool(
  contract: JobContract,
  start: Mutate,
  client: JobControlClient,
  opts: SignetToolsOptions,
): Tool {
  const toolName = contract.name;
  return tool<Record<string, unknown>, unknown>({
    description: contract.description,
    inputSchema: contract.input,
    outputSchema: contract.output,
    execute: async (input, { abortSignal, toolCallId }) => {
      let ticket: { job_id: string };
      try {
        // Not aborted midway: a start whose answer is lost would leave a job no one can cancel.
        ticket = (await start(input)) as { job_id: string };
      } catch (error) {
        throw toolError(toolName, error);
      }
      const handle = jobHandle(client, ticket);
      try {
        abortSignal?.throwIfAborted();
        return await handle.result({
          ...(abortSignal ? { signal: abortSignal } : {}),
          onProgress: (progress) =>
            opts.onProgress?.({ toolName, toolCallId, jobId: handle.id, progress }),
        });
      } catch (error) {
        if (abortSignal?.aborted) {
          // Nobody waits for the output any more: stop the work too. Best effort (the job may
          // have just ended, the server be gone), and the abort is what the caller hears of.
          await handle.cancel().catch(() => undefined);
          throw abortSignal.reason;
        }
        throw toolError(toolName, error);
      }
    },
  });
}

import type { BuiltInName, ContractSet } from '@signet/contracts';
import type { z } from 'zod';
import { META_JOB_ID, META_REASON } from './outcome.ts';

/**
 * The tools a bridge serves for a contract set: each one's MCP `arguments` and its
 * `structuredContent` (for a job, the job's output). The built-in tools are not served.
 */
export type BridgeToolTable<C extends ContractSet> = {
  [K in Exclude<keyof C & string, BuiltInName>]: {
    arguments: z.input<C[K]['input']>;
    structuredContent: z.output<C[K]['output']>;
  };
};

/** A call through the bridge: its output, or the refusal's reason code and text. */
export type BridgeCallResult<T> =
  | { ok: true; output: T; jobId?: string }
  | { ok: false; reason: string | undefined; text: string };

/** The part of an MCP client (the official SDK's v2 `Client`) that a typed call needs. */
export interface McpToolCaller<Options> {
  callTool(
    params: { name: string; arguments?: Record<string, unknown> },
    options?: Options,
  ): Promise<{
    content?: unknown;
    structuredContent?: unknown;
    isError?: unknown;
    _meta?: { [key: string]: unknown };
  }>;
}

/**
 * An MCP client's calls to a Signet bridge, typed from the server's contracts (which an agent
 * that has them can use; the bridge itself needs none): `await typedBridge<typeof tools>(client)
 * .call('batch_sum', { numbers: [1, 2] })`. A wrong argument is a compile error.
 */
export function typedBridge<C extends ContractSet, Options = never>(
  client: McpToolCaller<Options>,
) {
  return {
    async call<K extends keyof BridgeToolTable<C> & string>(
      name: K,
      args: BridgeToolTable<C>[K]['arguments'],
      options?: Options,
    ): Promise<BridgeCallResult<BridgeToolTable<C>[K]['structuredContent']>> {
      const result = await client.callTool({ name, arguments: args }, options);
      const jobId = result._meta?.[META_JOB_ID];
      if (result.isError === true) {
        const reason = result._meta?.[META_REASON];
        const text = Array.isArray(result.content)
          ? result.content.map((part: { text?: unknown }) => String(part.text ?? '')).join('\n')
          : '';
        return { ok: false, reason: typeof reason === 'string' ? reason : undefined, text };
      }
      return {
        ok: true,
        output: result.structuredContent as BridgeToolTable<C>[K]['structuredContent'],
        ...(typeof jobId === 'string' ? { jobId } : {}),
      };
    },
  };
}

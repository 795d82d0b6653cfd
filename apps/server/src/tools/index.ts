import { setTimeout as sleep } from 'node:timers/promises';
import { buildManifest, manifestFingerprint, type Tools, tools } from '@signet/contracts';
import { MAX_DEPTH } from '@signet/protocol';
import type { Handlers } from '@signet/server';

export interface ToolLimits {
  maxBodyBytes: number;
  windowMs: number;
}

/** The handlers of every tool in `@signet/contracts`: one per tool, nothing else to wire. */
export function createHandlers(limits: ToolLimits): Handlers<Tools> {
  const fingerprint = manifestFingerprint(buildManifest(tools));
  const toolNames = Object.keys(tools);
  return {
    server_identity: (_args, ctx) => ({
      server_id: ctx.serverId,
      fingerprint,
      capabilities: {
        protocol: 'mcp/0.1',
        tools: toolNames,
        limits: {
          max_body_bytes: limits.maxBodyBytes,
          max_depth: MAX_DEPTH,
          freshness_window_ms: limits.windowMs,
        },
      },
    }),

    batch_sum: ({ numbers }) => {
      let total = 0;
      for (const n of numbers) total += n;
      return { count: numbers.length, total };
    },

    // Works one second at a time, reporting progress after each, and stops when cancelled.
    start_long_task: async ({ seconds, payload }, job) => {
      job.progress({ current: 0, total: seconds, message: 'started' });
      for (let done = 1; done <= seconds; done++) {
        await sleep(1_000, undefined, { signal: job.signal });
        job.progress({ current: done, total: seconds, message: `${done}/${seconds} s` });
      }
      return payload;
    },
  };
}

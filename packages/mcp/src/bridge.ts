import type { CallToolResult, ServerContext, Tool } from '@modelcontextprotocol/server';
import { ProtocolError, ProtocolErrorCode, Server } from '@modelcontextprotocol/server';
import { createSignetClient, jobHandle, type SignetCredentials } from '@signet/client';
import type { JobProgress } from '@signet/protocol';
import {
  type BridgeClient,
  type BridgeDiscovery,
  type BridgeTool,
  callSignetTool,
  ToolCatalog,
} from './discovery.ts';
import {
  bridgeError,
  failedCallResult,
  failureMessage,
  META_JOB_ID,
  outputResult,
} from './outcome.ts';

export interface SignetBridgeOptions {
  /** The Signet server's base URL, e.g. `http://127.0.0.1:8787`. */
  url: string;
  /** The one client whose key the bridge holds (e.g. from `credentialsFromEnv()`). */
  credentials: SignetCredentials;
  /** Tool calls in flight at once, over every connection; past it a call is refused. Default 32. */
  maxConcurrentCalls?: number;
  /** How long one signed call may take, in ms (default 30 000); not the wait for a job's end. */
  callTimeoutMs?: number;
  /** Where the bridge reports (one line each); never stdout, which stdio hosts parse. */
  log?: (message: string) => void;
  /** The fetch the Signet client uses (default: the global one). */
  fetch?: typeof fetch;
}

export interface SignetBridge {
  /** The Signet server the bridge relays to. */
  readonly url: string;
  /** Asks the server who it is and which tools it serves, and checks them against the fingerprint. */
  discover(): Promise<BridgeDiscovery>;
  /**
   * A new MCP server that answers `tools/list` and `tools/call` through this bridge. The SDK's
   * serving entries call it per stdio connection and per HTTP request; they share the bridge's
   * Signet client, tool cache and limits.
   */
  createServer(): Server;
  /** Tool calls in flight now. */
  readonly callsInFlight: number;
  /**
   * Waits, at most `timeoutMs` (default 5 000), for the calls in flight to end and for the
   * cancel_job calls of the jobs they abandoned to be answered. Call it once the transports are
   * closed (which aborts their calls), before the process exits.
   */
  drain(timeoutMs?: number): Promise<void>;
}

export const BRIDGE_NAME = 'signet-mcp';
export const BRIDGE_VERSION = '0.1.0';

/** What the host sees of a tool: its schemas exactly as the manifest has them. */
function mcpTool(tool: BridgeTool): Tool {
  return {
    name: tool.name,
    description: tool.description,
    inputSchema: tool.inputSchema as Tool['inputSchema'],
    // The wire allows only object output schemas; every Signet contract has one.
    ...(tool.outputSchema.type === 'object'
      ? { outputSchema: tool.outputSchema as NonNullable<Tool['outputSchema']> }
      : {}),
  };
}

/**
 * An MCP bridge to one Signet server: every `tools/call` becomes one signed Signet call (a job
 * is started, then followed to its end), and every answer is verified before the host sees it.
 */
export function createSignetBridge(options: SignetBridgeOptions): SignetBridge {
  const url = options.url.replace(/\/+$/, '');
  const maxCalls = options.maxConcurrentCalls ?? 32;
  const timeoutMs = options.callTimeoutMs ?? 30_000;
  const log = options.log ?? (() => {});
  const client: BridgeClient = createSignetClient({
    url,
    ...options.credentials,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const catalog = new ToolCatalog(client, timeoutMs);
  /** Calls in flight and cancel_job calls under way: what `drain` waits for. */
  const pending = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    const settled: Promise<unknown> = promise.then(
      () => pending.delete(settled),
      () => pending.delete(settled),
    );
    pending.add(settled);
    return promise;
  };
  let inFlight = 0;

  /** An abandoned job is cancelled (its handler's AbortSignal fires), whatever became of the call. */
  function cancelJob(jobId: string) {
    void track(
      jobHandle(client, { job_id: jobId })
        .cancel()
        .then(
          (state) => log(`cancelled job ${jobId}: it is ${state.status}`),
          (error: unknown) => log(failureMessage(`cannot cancel job ${jobId}`, error, url)),
        ),
    );
  }

  async function runTool(
    tool: BridgeTool,
    args: Record<string, unknown>,
    ctx: ServerContext,
  ): Promise<CallToolResult> {
    const signal = AbortSignal.any([ctx.mcpReq.signal, AbortSignal.timeout(timeoutMs)]);
    return outputResult(await callSignetTool(client, tool.name, args, signal));
  }

  async function runJob(
    tool: BridgeTool,
    args: Record<string, unknown>,
    ctx: ServerContext,
  ): Promise<CallToolResult> {
    // The start is not abandoned half-way: a job it started would run on with no id to cancel.
    const ticket = (await callSignetTool(
      client,
      tool.name,
      args,
      AbortSignal.timeout(timeoutMs),
    )) as { job_id: string };
    const job = jobHandle<unknown>(client, ticket);
    const { signal } = ctx.mcpReq;
    const progressToken = ctx.mcpReq._meta?.progressToken;
    let last = Number.NEGATIVE_INFINITY;
    const onProgress = (progress: JobProgress) => {
      // MCP progress must grow; a watch that fell back to polling may report a state twice.
      if (progressToken === undefined || !(progress.current > last)) return;
      last = progress.current;
      ctx.mcpReq
        .notify({
          method: 'notifications/progress',
          params: {
            progressToken,
            progress: progress.current,
            ...(progress.total === undefined ? {} : { total: progress.total }),
            ...(progress.message === undefined ? {} : { message: progress.message }),
            _meta: { [META_JOB_ID]: job.id },
          },
        })
        .catch(() => {}); // the host went away: the abort below handles it
    };
    try {
      signal.throwIfAborted();
      return outputResult(await job.result({ signal, onProgress }), job.id);
    } catch (error) {
      if (signal.aborted) cancelJob(job.id);
      throw error;
    }
  }

  async function callTool(
    name: string,
    args: Record<string, unknown>,
    ctx: ServerContext,
  ): Promise<CallToolResult> {
    let tool: BridgeTool | undefined;
    try {
      tool = await catalog.lookup(name);
    } catch (error) {
      throw bridgeError(`signet: ${name}`, error, url);
    }
    if (!tool) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`);
    if (inFlight >= maxCalls) {
      throw new ProtocolError(
        ProtocolErrorCode.InternalError,
        `signet: ${name}: ${maxCalls} tool calls are already in flight; try again later`,
      );
    }
    inFlight++;
    try {
      return await track(tool.kind === 'job' ? runJob(tool, args, ctx) : runTool(tool, args, ctx));
    } catch (error) {
      return failedCallResult(name, error, url);
    } finally {
      inFlight--;
    }
  }

  return {
    url,
    discover: () => catalog.refresh(),
    get callsInFlight() {
      return inFlight;
    },
    createServer() {
      const server = new Server(
        { name: BRIDGE_NAME, version: BRIDGE_VERSION },
        { capabilities: { tools: {} } },
      );
      server.setRequestHandler('tools/list', async () => {
        try {
          return { tools: (await catalog.refresh()).tools.map(mcpTool) };
        } catch (error) {
          throw bridgeError('signet: tools/list', error, url);
        }
      });
      server.setRequestHandler('tools/call', (request, ctx) =>
        callTool(request.params.name, request.params.arguments ?? {}, ctx),
      );
      return server;
    },
    async drain(drainMs = 5_000) {
      const deadline = Date.now() + drainMs;
      // A call that ends may start a cancel_job call: wait again until nothing is left.
      while (pending.size > 0 && Date.now() < deadline) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.allSettled([...pending]),
          new Promise((resolve) => {
            timer = setTimeout(resolve, deadline - Date.now());
          }),
        ]);
        clearTimeout(timer);
      }
    },
  };
}

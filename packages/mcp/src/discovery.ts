import type { createSignetClient } from '@signet/client';
import type { SignetRouter } from '@signet/contracts';
import { type ContractSetOf, type Manifest, manifestFingerprint } from '@signet/contracts';
import { z } from 'zod';

/**
 * The bridge's Signet client. Only the built-in tools are known when it is compiled: the user's
 * tools are found at run time (`list_tools`) and called through `callSignetTool`.
 */
export type BridgeClient = ReturnType<typeof createSignetClient<SignetRouter<ContractSetOf<[]>>>>;

/** A procedure of the client that no type knows of: a tool discovered at run time. */
interface DynamicProcedure {
  mutate(input: unknown, opts?: { signal?: AbortSignal }): Promise<unknown>;
}

/** One signed call of a tool found at run time (the tRPC client is a proxy: any name works). */
export function callSignetTool(
  client: BridgeClient,
  name: string,
  args: Record<string, unknown>,
  signal: AbortSignal,
): Promise<unknown> {
  const procedures = client as unknown as Record<string, DynamicProcedure>;
  return procedures[name]!.mutate(args, { signal });
}

/** A tool or job as the host sees it; the built-in tools are the bridge's own business. */
export interface BridgeTool {
  name: string;
  kind: 'tool' | 'job';
  description: string;
  inputSchema: Record<string, unknown>;
  /** The tool's output, or for a job the job's output (the call waits for it). */
  outputSchema: Record<string, unknown>;
}

/** What the Signet server said it serves, checked against its fingerprint. */
export interface BridgeDiscovery {
  serverId: string;
  fingerprint: string;
  tools: BridgeTool[];
}

/** A manifest that is not the one `server_identity` vouches for, or not a manifest at all. */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

// Signed answers are authentic, but the bridge still reads only what it understands.
const jsonSchema = z.record(z.string(), z.unknown());
const manifestShape = z.object({
  tools: z.array(
    z.object({
      name: z.string().min(1),
      kind: z.enum(['tool', 'job', 'job-control']),
      description: z.string(),
      built_in: z.literal(true).optional(),
      input_schema: jsonSchema,
      output_schema: jsonSchema,
    }),
  ),
});

/** Checks a `list_tools` answer against `server_identity`'s fingerprint; lists the user's tools. */
export function checkManifest(
  manifest: Manifest,
  identity: { server_id: string; fingerprint: string },
): BridgeDiscovery {
  const actual = manifestFingerprint(manifest);
  if (actual !== identity.fingerprint) {
    throw new ManifestError(
      `the tool manifest of ${identity.server_id} does not match its fingerprint ` +
        `(server_identity says ${identity.fingerprint}, list_tools hashes to ${actual})`,
    );
  }
  const parsed = manifestShape.safeParse(manifest);
  if (!parsed.success) {
    throw new ManifestError(`the tool manifest of ${identity.server_id} is not readable`);
  }
  const tools: BridgeTool[] = [];
  for (const tool of parsed.data.tools) {
    if (tool.built_in || tool.kind === 'job-control') continue;
    tools.push({
      name: tool.name,
      kind: tool.kind,
      description: tool.description,
      inputSchema: tool.input_schema,
      outputSchema: tool.output_schema,
    });
  }
  return { serverId: identity.server_id, fingerprint: identity.fingerprint, tools };
}

/**
 * The server's tools, cached under their fingerprint: each refresh costs one `server_identity`
 * call, and `list_tools` only when the fingerprint changed (a new deployment, new contracts).
 */
export class ToolCatalog {
  private current: BridgeDiscovery | undefined;
  private byName = new Map<string, BridgeTool>();
  private pending: Promise<BridgeDiscovery> | undefined;

  constructor(
    private readonly client: BridgeClient,
    private readonly timeoutMs: number,
  ) {}

  /** Asks the server again; concurrent callers share one round of calls. */
  refresh(): Promise<BridgeDiscovery> {
    this.pending ??= this.load().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  /** A tool by name, asking the server again when it is not (yet) known. */
  async lookup(name: string): Promise<BridgeTool | undefined> {
    const known = this.byName.get(name);
    if (known) return known;
    await this.refresh();
    return this.byName.get(name);
  }

  private async load(): Promise<BridgeDiscovery> {
    const signal = () => ({ signal: AbortSignal.timeout(this.timeoutMs) });
    const identity = await this.client.server_identity.mutate({}, signal());
    if (this.current?.fingerprint === identity.fingerprint) return this.current;
    const manifest = await this.client.list_tools.mutate({}, signal());
    const discovery = checkManifest(manifest, identity);
    this.current = discovery;
    this.byName = new Map(discovery.tools.map((tool) => [tool.name, tool]));
    return discovery;
  }
}

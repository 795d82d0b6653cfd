import { createHash } from 'node:crypto';
import { canonicalize, PROTOCOL_VERSION } from '@signet/protocol';
import { z } from 'zod';
import { type ContractSet, isBuiltInContract } from './define.ts';

const jsonSchema = z.record(z.string(), z.unknown());

/** The manifest's form, as `list_tools` answers it (and a client in any language can check). */
export const manifestSchema = z.strictObject({
  protocol: z.literal(PROTOCOL_VERSION),
  tools: z.array(
    z.strictObject({
      name: z.string(),
      kind: z.enum(['tool', 'job', 'job-control']),
      description: z.string(),
      /** Only on jobs: run again after a crash rather than end as INTERRUPTED. */
      retryable: z.boolean().optional(),
      /** Only on the tools the server answers itself (job control, identity, this list). */
      built_in: z.literal(true).optional(),
      input_schema: jsonSchema,
      output_schema: jsonSchema,
    }),
  ),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestTool = Manifest['tools'][number];

/** The JSON-Schema tool manifest (for LLM function calling and clients in other languages). */
export function buildManifest(contracts: ContractSet): Manifest {
  return {
    protocol: PROTOCOL_VERSION,
    tools: Object.values(contracts).map((contract) => ({
      name: contract.name,
      kind: contract.kind,
      description: contract.description,
      ...(contract.kind === 'job' ? { retryable: contract.retryable } : {}),
      ...(isBuiltInContract(contract) ? { built_in: true as const } : {}),
      input_schema: z.toJSONSchema(contract.input, { io: 'input' }),
      output_schema: z.toJSONSchema(contract.output, { io: 'output' }),
    })),
  };
}

/** Identifies a set of tool contracts: sha256 of the manifest's canonical form. Never a secret. */
export function manifestFingerprint(manifest: Manifest): string {
  return `sha256:${createHash('sha256').update(canonicalize(manifest)).digest('hex')}`;
}

import { createHash } from 'node:crypto';
import { canonicalize, PROTOCOL_VERSION } from '@signet/protocol';
import { z } from 'zod';
import type { ContractSet } from './define.ts';

export interface ManifestTool {
  name: string;
  kind: 'tool' | 'job' | 'job-control';
  description: string;
  retryable?: boolean;
  input_schema: unknown;
  output_schema: unknown;
}

export interface Manifest {
  protocol: typeof PROTOCOL_VERSION;
  tools: ManifestTool[];
}

/** The JSON-Schema tool manifest (for LLM function calling and clients in other languages). */
export function buildManifest(contracts: ContractSet): Manifest {
  return {
    protocol: PROTOCOL_VERSION,
    tools: Object.values(contracts).map((contract) => ({
      name: contract.name,
      kind: contract.kind,
      description: contract.description,
      ...(contract.kind === 'job' ? { retryable: contract.retryable } : {}),
      input_schema: z.toJSONSchema(contract.input, { io: 'input' }),
      output_schema: z.toJSONSchema(contract.output, { io: 'output' }),
    })),
  };
}

/** Identifies a set of tool contracts: sha256 of the manifest's canonical form. Never a secret. */
export function manifestFingerprint(manifest: Manifest): string {
  return `sha256:${createHash('sha256').update(canonicalize(manifest)).digest('hex')}`;
}

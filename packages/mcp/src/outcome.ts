import type { CallToolResult } from '@modelcontextprotocol/server';
import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import { JobFailedError, SignetResponseError, signetReason } from '@signet/client';
import { isReasonCode, type ResponseEnvelope } from '@signet/protocol';
import { ManifestError } from './discovery.ts';

// What the host is shown of a call. Only verified data becomes a tool result: a tool's output,
// a refusal the server signed, or a job's end read from signed states. Everything else (an
// unsigned refusal, a response that failed verification, no answer) is an MCP error that says
// what went wrong and carries nothing the server sent but a known reason code.

/** `_meta` keys of the bridge's results and progress notifications. */
export const META_JOB_ID = 'signet/job_id';
export const META_REASON = 'signet/reason';

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A tool's (or a finished job's) output: structured, and as JSON text for older hosts. */
export function outputResult(output: unknown, jobId?: string): CallToolResult {
  return {
    content: [{ type: 'text', text: JSON.stringify(output) }],
    ...(isObject(output) ? { structuredContent: output } : {}),
    ...(jobId === undefined ? {} : { _meta: { [META_JOB_ID]: jobId } }),
  };
}

interface Refusal {
  code: string;
  message: string;
  details?: unknown;
  jobId?: string;
}

/**
 * The refusal in a failed call, if the server signed it (the client link verified its envelope,
 * or it would have thrown a SignetResponseError instead), or the end of a failed job.
 */
function signedRefusal(error: unknown): Refusal | undefined {
  if (error instanceof JobFailedError) {
    return { code: error.code, message: error.message, jobId: error.jobId };
  }
  if (error instanceof SignetResponseError || !isReasonCode(signetReason(error))) return undefined;
  const envelope = (error as { data?: { envelope?: ResponseEnvelope } }).data?.envelope;
  if (!envelope?.error) return undefined;
  const { code, message, details } = envelope.error;
  return details === undefined ? { code, message } : { code, message, details };
}

/** A refusal as a tool result: the model reads the reason code and can fix its call. */
function refusalResult(tool: string, refusal: Refusal): CallToolResult {
  const what =
    refusal.jobId === undefined ? `${tool} was refused` : `${tool} (job ${refusal.jobId}) failed`;
  const lines = [`${what}: ${refusal.code}: ${refusal.message}`];
  if (refusal.details !== undefined) lines.push(`details: ${JSON.stringify(refusal.details)}`);
  return {
    isError: true,
    content: [{ type: 'text', text: lines.join('\n') }],
    _meta: {
      [META_REASON]: refusal.code,
      ...(refusal.jobId === undefined ? {} : { [META_JOB_ID]: refusal.jobId }),
    },
  };
}

/** The first cause in the chain that matches. */
function findCause<T>(error: unknown, pick: (cause: unknown) => T | undefined): T | undefined {
  let cause = error;
  for (let depth = 0; depth < 6 && cause !== undefined && cause !== null; depth++) {
    const found = pick(cause);
    if (found !== undefined) return found;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Why a call got no verified answer, in one line with nothing of what the server sent. */
export function failureMessage(what: string, error: unknown, url: string): string {
  if (error instanceof ProtocolError) return error.message;
  if (error instanceof ManifestError) return `${what}: ${error.message}`;
  const reason = signetReason(error);
  if (reason === 'BAD_RESPONSE_SIGNATURE' || reason === 'BAD_RESPONSE_ENVELOPE') {
    return `${what}: the answer of ${url} failed verification (${reason}); nothing of it is shown`;
  }
  if (reason === 'RESPONSE_MISMATCH') {
    return `${what}: the answer of ${url} is not for this call (${reason}); nothing of it is shown`;
  }
  if (reason === 'BAD_SIGNATURE') {
    return `${what}: ${url} refused the call unsigned (BAD_SIGNATURE): it does not accept this client's key`;
  }
  if (isReasonCode(reason)) return `${what}: ${url} refused the call unsigned (${reason})`;
  if (findCause(error, (c) => ((c as Error).name === 'TimeoutError' ? true : undefined))) {
    return `${what}: no answer from the Signet server at ${url} in time`;
  }
  const code = findCause(error, (c) => {
    const value = (c as { code?: unknown }).code;
    return typeof value === 'string' && /^E[A-Z_]+$/.test(value) ? value : undefined;
  });
  if (code) return `${what}: cannot reach the Signet server at ${url} (${code})`;
  // fetch's own network failure: its causes are local, never text the server sent.
  const network = findCause(error, (c) =>
    c instanceof TypeError && c.message === 'fetch failed' ? c : undefined,
  );
  if (network) {
    const cause = (network as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? ` (${cause.message})` : '';
    return `${what}: cannot reach the Signet server at ${url}${detail}`;
  }
  return `${what}: no valid answer from the Signet server at ${url}`;
}

/** An MCP error (JSON-RPC -32603) for a call with no verified answer; `data.reason` when known. */
export function bridgeError(what: string, error: unknown, url: string): ProtocolError {
  if (error instanceof ProtocolError) return error;
  const reason = signetReason(error);
  return new ProtocolError(
    ProtocolErrorCode.InternalError,
    failureMessage(what, error, url),
    reason === undefined ? undefined : { reason },
  );
}

/**
 * The result of a call that threw: a tool result with `isError` for a signed refusal or a failed
 * job; otherwise an MCP error (thrown).
 */
export function failedCallResult(tool: string, error: unknown, url: string): CallToolResult {
  const refusal = signedRefusal(error);
  if (refusal) return refusalResult(tool, refusal);
  throw bridgeError(`signet: ${tool}`, error, url);
}

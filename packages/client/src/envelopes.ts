import {
  type RequestEnvelope,
  type ResponseEnvelope,
  responseEnvelopeSchema,
  sign,
  unsignedRequest,
  verify,
} from '@signet/protocol';
import { SignetResponseError } from './errors.ts';

export interface SignetCredentials {
  /** The server this client talks to: requests name it, responses must come from it. */
  serverId: string;
  clientId: string;
  /** The client's key; `kid` is sent so the server need not try each of the client's keys. */
  key: { kid?: string; secret: string };
}

/** Wraps a tool's args into a freshly signed envelope (new nonce, current time). */
export function signRequest(
  credentials: SignetCredentials,
  tool: string,
  args: unknown,
  opts: { requestId?: string; now: number },
): RequestEnvelope {
  const value = args ?? {};
  // Checked, not copied: a copy could drop keys (e.g. an own `__proto__`) that the caller sent.
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${tool}: arguments must be a JSON object`);
  }
  const parties = { ...credentials, kid: credentials.key.kid };
  return sign(
    unsignedRequest(parties, tool, value as Record<string, unknown>, opts),
    credentials.key.secret,
  );
}

/**
 * Accepts a response envelope only if it is well-formed, signed with our key, and answers this
 * very request (request_id and nonce echoed) from the expected server.
 */
export function verifyResponse(
  credentials: SignetCredentials,
  request: RequestEnvelope,
  data: unknown,
): ResponseEnvelope {
  const parsed = responseEnvelopeSchema.safeParse(data);
  if (!parsed.success) {
    throw new SignetResponseError('BAD_RESPONSE_ENVELOPE', 'the response is not a Signet envelope');
  }
  const envelope = parsed.data as ResponseEnvelope;
  let valid = false;
  try {
    valid = verify(envelope, credentials.key.secret);
  } catch {
    valid = false;
  }
  if (!valid) {
    throw new SignetResponseError(
      'BAD_RESPONSE_SIGNATURE',
      'the response signature does not verify: it may have been tampered with',
    );
  }
  if (
    envelope.request_id !== request.request_id ||
    envelope.nonce !== request.nonce ||
    envelope.server_id !== credentials.serverId
  ) {
    throw new SignetResponseError(
      'RESPONSE_MISMATCH',
      'the response does not answer this request from this server',
    );
  }
  return envelope;
}

/**
 * A signed refusal (the `error.data` of a failed call): its envelope must pass `verifyResponse`
 * and agree with the unsigned `reason` beside it, which is what callers read.
 */
export function verifyRefusal(
  credentials: SignetCredentials,
  request: RequestEnvelope,
  data: { reason?: unknown; envelope?: unknown },
): ResponseEnvelope {
  const envelope = verifyResponse(credentials, request, data.envelope);
  if (envelope.ok || envelope.error === null || envelope.error.code !== data.reason) {
    throw new SignetResponseError(
      'BAD_RESPONSE_ENVELOPE',
      'the refusal does not agree with its signed envelope',
    );
  }
  return envelope;
}

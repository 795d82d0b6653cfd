// The envelope kit: build and sign request envelopes by hand, send them over real HTTP, and check
// that what comes back is a signed answer or refusal (DESIGN 1.1-1.5). For tests of Signet and of
// users' own tools. Assertions throw node:assert errors, so any test runner will do.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import {
  type EnvelopeKey,
  type RequestEnvelope,
  type ResponseEnvelope,
  responseEnvelopeSchema,
  type SignetErrorShape,
  sign,
  type UnsignedRequestEnvelope,
  unsignedRequest,
  verify,
} from '@signet/protocol';

/** Who signs a request, for which server; without `kid`, the server tries each of its keys. */
export interface EnvelopeSigner {
  serverId: string;
  clientId: string;
  kid?: string;
  secret: EnvelopeKey;
}

/** An unsigned request envelope, with any fields a test added or changed (nothing is checked). */
export type RequestDraft = UnsignedRequestEnvelope & Record<string, unknown>;

/**
 * A fresh unsigned request envelope (new nonce, request_id, ts_ms); `overrides` set fields, and
 * delete those they set to `undefined` (e.g. `{ kid: undefined }`).
 */
export function requestEnvelope(
  who: EnvelopeSigner,
  tool: string,
  args: unknown,
  overrides: Record<string, unknown> = {},
): RequestDraft {
  const draft: Record<string, unknown> = {
    ...unsignedRequest(who, tool, args as Record<string, unknown>, { now: Date.now() }),
    ...overrides,
  };
  for (const [key, value] of Object.entries(overrides)) if (value === undefined) delete draft[key];
  return draft as RequestDraft;
}

/** Signs a draft as a client does (protocol's `sign`): HMAC-SHA256 of its canonical form. */
export function signEnvelope<T extends object>(
  draft: T,
  secret: EnvelopeKey,
): T & { signature: string } {
  return sign(draft, secret);
}

/** A fresh request envelope signed with `who`'s key: `requestEnvelope`, then `signEnvelope`. */
export function signedRequest(
  who: EnvelopeSigner,
  tool: string,
  args: unknown,
  overrides?: Record<string, unknown>,
): RequestEnvelope & Record<string, unknown> {
  return signEnvelope(requestEnvelope(who, tool, args, overrides), who.secret);
}

/** tRPC's answer to a call: `result.data` on success, `error` on a refusal. */
export interface TrpcAnswer {
  result?: { data: ResponseEnvelope };
  error?: SignetErrorShape;
}

/** What came back over HTTP: status, headers, the body's text and its JSON (undefined if none). */
export interface EnvelopeReply {
  status: number;
  headers: Headers;
  text: string;
  json: TrpcAnswer | undefined;
}

/** How to send: the content type (`null` for none; default application/json) and the method. */
export interface PostInit {
  contentType?: string | null;
  method?: string;
}

/** The URL of `tool` on a server: `/trpc/<tool>`, or `tool` itself when it starts with `/`. */
export function toolUrl(baseUrl: string, tool: string): string {
  return `${baseUrl.replace(/\/+$/, '')}${tool.startsWith('/') ? tool : `/trpc/${tool}`}`;
}

/** The GET URL of a watch_job call (DESIGN 1.6): the signed envelope as the `input` parameter. */
export function watchUrl(baseUrl: string, envelope: object): string {
  return `${toolUrl(baseUrl, 'watch_job')}?input=${encodeURIComponent(JSON.stringify(envelope))}`;
}

/** POSTs `body` to `tool` (a GET sends none): text, bytes and forms as they are, else JSON. */
export async function postEnvelope(
  baseUrl: string,
  tool: string,
  body: unknown,
  init: PostInit = {},
): Promise<EnvelopeReply> {
  const method = init.method ?? 'POST';
  const contentType = init.contentType === undefined ? 'application/json' : init.contentType;
  const response = await fetch(toolUrl(baseUrl, tool), {
    method,
    headers: contentType === null ? {} : { 'content-type': contentType },
    ...(method === 'GET' || body === undefined ? {} : { body: bodyInit(body) }),
  });
  return replyOf(response.status, response.headers, await response.text());
}

function bodyInit(body: unknown): RequestInit['body'] {
  if (typeof body === 'string' || body instanceof Uint8Array || body instanceof FormData) {
    return body as RequestInit['body'];
  }
  return JSON.stringify(body);
}

/**
 * POSTs `chunks` with node:http, for what fetch will not send (a declared length, a chunked body
 * past the limit). The server may answer and close before it has read them all.
 */
export function postChunks(
  baseUrl: string,
  tool: string,
  chunks: readonly Uint8Array[],
  headers: Record<string, string | number> = {},
): Promise<EnvelopeReply> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(
      toolUrl(baseUrl, tool),
      { method: 'POST', headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        answered = true;
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('error', reject);
        res.on('end', () => {
          const fetched = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const one of [value ?? []].flat()) fetched.append(name, one);
          }
          resolve(replyOf(res.statusCode ?? 0, fetched, Buffer.concat(parts).toString('utf8')));
        });
      },
    );
    // A reset while we still write is expected once the server has answered.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

function replyOf(status: number, headers: Headers, text: string): EnvelopeReply {
  let json: TrpcAnswer | undefined;
  try {
    json = JSON.parse(text) as TrpcAnswer;
  } catch {
    json = undefined;
  }
  return { status, headers, text, json };
}

/** The request a response must answer: it echoes these. */
export type Answered = Pick<RequestEnvelope, 'request_id' | 'nonce'>;

/** Asserts a response envelope (DESIGN 1.2) signed with `secret`, answering `request` if given. */
export function expectSignedEnvelope(
  envelope: unknown,
  secret: EnvelopeKey,
  request?: Answered,
): ResponseEnvelope {
  const text = JSON.stringify(envelope);
  assert.ok(responseEnvelopeSchema.safeParse(envelope).success, `not a response envelope: ${text}`);
  const signed = envelope as ResponseEnvelope;
  assert.ok(verify(signed, secret), `the response's signature does not verify: ${text}`);
  if (request) {
    assert.equal(signed.request_id, request.request_id, `request_id not echoed: ${text}`);
    assert.equal(signed.nonce, request.nonce, `nonce not echoed: ${text}`);
  }
  return signed;
}

/** Asserts HTTP 200 and a successful envelope for `request`, signed with `by.secret`. */
export function expectAnswer(
  reply: EnvelopeReply,
  request: Answered & Pick<RequestEnvelope, 'server_id'>,
  by: { secret: EnvelopeKey },
): ResponseEnvelope {
  assert.equal(reply.status, 200, `HTTP ${reply.status}: ${reply.text}`);
  const data = reply.json?.result?.data;
  assert.ok(data, `no envelope in ${reply.text}`);
  const envelope = expectSignedEnvelope(data, by.secret, request);
  assert.equal(envelope.server_id, request.server_id, `server_id: ${reply.text}`);
  assert.equal(envelope.ok, true, `ok: ${reply.text}`);
  assert.equal(envelope.error, null, `error: ${reply.text}`);
  return envelope;
}

/** Whom a signed refusal answers: the key that signed it; if given, the request and server. */
export interface SignedFor {
  secret: EnvelopeKey;
  request?: Answered;
  serverId?: string;
}

/**
 * Asserts a refusal with `status` and `reason` (DESIGN 1.5) and no stack trace; with `signedFor`,
 * a signed error envelope must come with it (checks 4-9), without it there must be none (checks
 * 1-3 and the HTTP layer). Returns the tRPC error.
 */
export function expectRefusal(
  reply: EnvelopeReply,
  status: number,
  reason: string,
  signedFor?: SignedFor,
): SignetErrorShape {
  assert.equal(reply.status, status, `HTTP ${reply.status}: ${reply.text}`);
  assert.doesNotMatch(reply.text, /stack|at \/|node:internal|\.ts:\d/, 'a trace in the refusal');
  assert.equal(reply.json?.result, undefined, `a result in a refusal: ${reply.text}`);
  const error = reply.json?.error;
  assert.ok(error, `no error in ${reply.text}`);
  assert.equal(error.data.reason, reason, `reason: ${reply.text}`);
  assert.equal(error.data.httpStatus, status, `httpStatus: ${reply.text}`);
  if (!signedFor) {
    assert.equal(error.data.envelope, undefined, `a signed envelope, for no one: ${reply.text}`);
    return error;
  }
  const envelope = expectSignedEnvelope(error.data.envelope, signedFor.secret, signedFor.request);
  assert.equal(envelope.ok, false, `ok: ${reply.text}`);
  assert.equal(envelope.status, 'error', `status: ${reply.text}`);
  assert.equal(envelope.result, null, `result: ${reply.text}`);
  assert.equal(envelope.error?.code, reason, `error.code: ${reply.text}`);
  if (signedFor.serverId !== undefined) {
    assert.equal(envelope.server_id, signedFor.serverId, `server_id: ${reply.text}`);
  }
  return error;
}

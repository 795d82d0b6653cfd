import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import {
  createMcpHandler,
  validateHostHeader,
  validateOriginHeader,
} from '@modelcontextprotocol/server';
import type { SignetBridge } from './bridge.ts';

export interface HttpBridgeOptions {
  /** Default 0: any free port. The bridge binds 127.0.0.1 only. */
  port?: number;
  /** The largest request body, in bytes (default 1 MiB); past it 413. */
  maxBodyBytes?: number;
  /** Connections at once (default 64); past it a new one is closed at once. */
  maxConnections?: number;
  onerror?: (error: Error) => void;
}

export interface HttpBridge {
  /** `http://127.0.0.1:PORT/mcp`, with the real port. */
  readonly url: string;
  /** Stops listening and aborts the calls in flight (their jobs are cancelled). */
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
export const MCP_PATH = '/mcp';
/** DNS rebinding: a page on another name that resolves to 127.0.0.1 must not reach the bridge. */
const ALLOWED_HOSTNAMES = ['127.0.0.1', 'localhost'];

function refuse(res: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ jsonrpc: '2.0', error: { code: -32_000, message }, id: null });
  res.writeHead(status, { 'content-type': 'application/json', connection: 'close' }).end(body);
}

/** The body, or undefined (and a 413 sent) when it is larger than `max`. */
async function readBody(
  req: IncomingMessage,
  res: ServerResponse,
  max: number,
): Promise<Buffer | undefined> {
  const tooLarge = () => {
    refuse(res, 413, `the request body is larger than ${max} bytes`);
    req.resume(); // drain what is in flight; the connection closes after the answer
    return undefined;
  };
  if (Number(req.headers['content-length'] ?? 0) > max) return tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function webHeaders(req: IncomingMessage): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  return headers;
}

/**
 * Serves the bridge as stateless Streamable HTTP at `http://127.0.0.1:PORT/mcp` (both protocol
 * eras, no session id). A call whose response stream closes before its result (the client went
 * away or aborted) is aborted, and its Signet job cancelled.
 */
export async function serveHttp(
  bridge: SignetBridge,
  options: HttpBridgeOptions = {},
): Promise<HttpBridge> {
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const onerror = options.onerror ?? (() => {});
  const handler = createMcpHandler(() => bridge.createServer(), {
    maxRequestBodySize: maxBodyBytes,
    onerror,
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path !== MCP_PATH) return refuse(res, 404, `not found: the MCP endpoint is ${MCP_PATH}`);
    const host = validateHostHeader(req.headers.host, ALLOWED_HOSTNAMES);
    if (!host.ok) return refuse(res, 403, host.message);
    const origin = validateOriginHeader(req.headers.origin, ALLOWED_HOSTNAMES);
    if (!origin.ok) return refuse(res, 403, origin.message);

    const method = req.method ?? 'GET';
    const body =
      method === 'GET' || method === 'HEAD' ? undefined : await readBody(req, res, maxBodyBytes);
    if (body === undefined && method !== 'GET' && method !== 'HEAD') return;

    // The client going away before the response ended aborts the exchange, and so the call.
    const gone = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const request = new Request(`http://${req.headers.host}${req.url}`, {
      method,
      headers: webHeaders(req),
      signal: gone.signal,
      ...(body === undefined ? {} : { body }),
    });
    const response = await handler.fetch(request);
    const headers: Record<string, string> = {};
    for (const [name, value] of response.headers) headers[name] = value;
    res.writeHead(response.status, headers);
    if (!response.body) {
      res.end();
      return;
    }
    await pipeline(Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>), res);
  }

  const server = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      const code = (error as { code?: unknown }).code;
      // A client that went away (mid-body, or cutting the response stream) ends here.
      if (code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ABORT_ERR' || code === 'ECONNRESET') {
        return res.destroy();
      }
      if (res.headersSent) res.destroy();
      else refuse(res, 500, 'internal error');
      onerror(error instanceof Error ? error : new Error(String(error)));
    });
  });
  server.maxConnections = options.maxConnections ?? 64;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000; // receiving the request only: never cuts a response stream
  server.keepAliveTimeout = 5_000;
  server.listen(options.port ?? 0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${HOST}:${port}${MCP_PATH}`,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await handler.close();
      await closed;
    },
  };
}

// End to end over real HTTP: a tampering proxy between the typed client and the app. A rewritten
// result or refusal, a reason that disagrees with its signed envelope (also on watch_job's
// stream) and a replayed answer to another request are all refused by the client.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jobHandle, signetReason } from '@signet/client';
import { afterEach, describe, expect, it } from 'vitest';
import { appUrl, rejectionOf, typedClient, useE2eApp } from './testing/e2e-app.ts';

useE2eApp();

// ---- a tampering proxy ---------------------------------------------------------------------

interface Proxy {
  url: string;
  close(): Promise<void>;
}

/** Forwards every call to the app, passing each response body through `rewrite` on the way back. */
async function startProxy(rewrite: (body: string, path: string) => string): Promise<Proxy> {
  const proxy: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', async () => {
      try {
        const upstream = await fetch(`${appUrl()}${req.url}`, {
          method: req.method ?? 'POST',
          headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
          ...(req.method === 'GET' ? {} : { body: Buffer.concat(parts) }),
        });
        const body = rewrite(await upstream.text(), req.url ?? '');
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      } catch {
        res.writeHead(502).end();
      }
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        proxy.close(() => resolve());
        proxy.closeAllConnections();
      }),
  };
}

describe('responses tampered with in transit', () => {
  let proxy: Proxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });

  it('a rewritten result is refused as BAD_RESPONSE_SIGNATURE, never returned', async () => {
    let rewritten = 0;
    proxy = await startProxy((body) => {
      if (!body.includes('"total":6')) return body;
      rewritten++;
      return body.replace('"total":6', '"total":7');
    });
    const client = typedClient({ url: proxy.url });
    // Untouched answers pass through the proxy as they are.
    await expect(client.batch_sum.mutate({ numbers: [1, 2] })).resolves.toEqual({
      count: 2,
      total: 3,
    });
    const error = await rejectionOf(client.batch_sum.mutate({ numbers: [1, 2, 3] }));
    expect(rewritten).toBe(1);
    expect(signetReason(error)).toBe('BAD_RESPONSE_SIGNATURE');
  });

  it('a rewritten signed refusal is refused as BAD_RESPONSE_SIGNATURE', async () => {
    let rewritten = 0;
    proxy = await startProxy((body) => {
      if (!body.includes('"code":"INVALID_ARGS"')) return body;
      rewritten++;
      return body.replace('"code":"INVALID_ARGS"', '"code":"TOOL_FAILED"');
    });
    const error = await rejectionOf(
      typedClient({ url: proxy.url }).batch_sum.mutate({ numbers: [] }),
    );
    expect(rewritten).toBe(1);
    expect(signetReason(error)).toBe('BAD_RESPONSE_SIGNATURE');
  });

  it('a refusal whose reason disagrees with its signed envelope is refused', async () => {
    // Regression: the client verified the envelope but reported the unsigned `data.reason`.
    let rewritten = 0;
    proxy = await startProxy((body) => {
      if (!body.includes('"reason":"INVALID_ARGS"')) return body;
      rewritten++;
      return body.replace('"reason":"INVALID_ARGS"', '"reason":"TOOL_NOT_ALLOWED"');
    });
    const error = await rejectionOf(
      typedClient({ url: proxy.url }).batch_sum.mutate({ numbers: [] }),
    );
    expect(rewritten).toBe(1);
    expect(signetReason(error)).toBe('BAD_RESPONSE_ENVELOPE');
  });

  it('the same holds for a refusal streamed by watch_job', async () => {
    let rewritten = 0;
    proxy = await startProxy((body) => {
      if (!body.includes('"reason":"JOB_NOT_FOUND"')) return body;
      rewritten++;
      return body.replace('"reason":"JOB_NOT_FOUND"', '"reason":"TOOL_NOT_ALLOWED"');
    });
    const client = typedClient({ url: proxy.url });
    const error = await rejectionOf(jobHandle(client, { job_id: randomUUID() }).result());
    expect(rewritten).toBe(1);
    expect(signetReason(error)).toBe('BAD_RESPONSE_ENVELOPE');
  });

  it('a valid response to another request is refused as RESPONSE_MISMATCH', async () => {
    let captured: string | undefined;
    let replayed = 0;
    proxy = await startProxy((body, path) => {
      if (!path.startsWith('/trpc/batch_sum')) return body;
      if (captured === undefined) {
        captured = body;
        return body;
      }
      replayed++;
      return captured;
    });
    const client = typedClient({ url: proxy.url });
    await expect(client.batch_sum.mutate({ numbers: [1, 2, 3] })).resolves.toEqual({
      count: 3,
      total: 6,
    });
    // The same question again: the old answer is correctly signed, but answers the old nonce.
    const error = await rejectionOf(client.batch_sum.mutate({ numbers: [1, 2, 3] }));
    expect(replayed).toBe(1);
    expect(signetReason(error)).toBe('RESPONSE_MISMATCH');
  });
});

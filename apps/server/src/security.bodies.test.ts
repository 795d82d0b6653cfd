// Adversarial tests over real HTTP, check 1 of DESIGN 1.4: oversized and deeply nested bodies
// against a server process (its memory, its health, SIGHUP while it serves), and the input limits
// of a signed envelope (strings, keys, items, non-finite numbers, lone surrogates, media type).
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { MAX_ITEMS, MAX_KEYS, MAX_STRING_LENGTH, MAX_VALUES } from '@signet/protocol';
import type { SignetErrorShape } from '@signet/server';
import { eventually, type ServerProcess, startProcess } from '@signet/server/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppServer } from './app.ts';
import { onFront } from './testing/front.ts';
import {
  alice,
  apps,
  cleanUpAfterEachTest,
  expectOk,
  expectRefusal,
  keyringOf,
  post,
  signed,
  startTestApp,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

// ---- 3. hostile bodies against a real server process ------------------------------------------

/** VmRSS of a process, in bytes (Linux). */
function rssOf(pid: number): number {
  const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/**
 * Streams `total` bytes of body to `url` over a raw socket (chunked, or with a Content-Length
 * header), respecting backpressure, and reads the answer as it comes. The server answers 413 and
 * closes without reading the rest, so a reset while we still write is expected: what counts is
 * the answer that arrived before it.
 */
function streamBody(
  url: string,
  total: number,
  declareLength: boolean,
): Promise<{ status: number; text: string; sent: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let received = Buffer.alloc(0);
    let sent = 0;
    let settled = false;
    /** The answer, once its head and its Content-Length of body have arrived. */
    const answer = () => {
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd === -1) return undefined;
      const head = received.subarray(0, headEnd).toString();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1]);
      const body = received.subarray(headEnd + 4);
      if (!Number.isInteger(length) || body.length < length) return undefined;
      return { status, text: body.subarray(0, length).toString(), sent };
    };
    const settle = () => {
      if (settled) return;
      const result = answer();
      settled = true;
      socket.destroy();
      if (result) resolve(result);
      else reject(new Error(`no complete answer after ${sent} bytes: ${received.toString()}`));
    };
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      if (answer()) settle();
    });
    socket.on('error', () => {}); // EPIPE / ECONNRESET once the server has closed
    socket.on('close', settle);
    socket.write(
      `POST /trpc/batch_sum HTTP/1.1\r\nhost: ${hostname}:${port}\r\n` +
        'content-type: application/json\r\n' +
        (declareLength ? `content-length: ${total}\r\n\r\n` : 'transfer-encoding: chunked\r\n\r\n'),
    );
    const chunk = Buffer.alloc(256 * 1024, 0x20); // JSON whitespace
    // One chunk per turn of the event loop, so that the answer is read while we send.
    const pump = () => {
      if (settled || socket.destroyed) return;
      if (sent >= total) {
        if (!declareLength) socket.write('0\r\n\r\n');
        return;
      }
      const size = Math.min(chunk.length, total - sent);
      const piece = size === chunk.length ? chunk : chunk.subarray(0, size);
      sent += size;
      const more = socket.write(
        declareLength
          ? piece
          : Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), piece, Buffer.from('\r\n')]),
      );
      if (more) setImmediate(pump);
      else socket.once('drain', pump);
    };
    pump();
  });
}

describe.skipIf(process.platform !== 'linux')('hostile bodies, against a server process', () => {
  let server: ServerProcess;
  let pid: number;

  beforeAll(async () => {
    const keyringPath = writeKeyring(keyringOf([alice]));
    // What `pnpm serve` runs, spawned directly so that the child is the node process itself.
    server = await startProcess(
      'node',
      ['--conditions=@signet/source', '--import', 'tsx', 'apps/server/src/cli.ts', 'serve'],
      onFront({ SIGNET_PORT: '0', SIGNET_STORE: 'memory:', SIGNET_KEYRING: keyringPath }),
    );
    pid = server.child.pid!;
  });
  afterAll(async () => {
    await server?.kill('SIGKILL');
  });

  async function healthy(): Promise<void> {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
  }

  it('a 50 MiB body, chunked or with Content-Length, is 413 without the server holding it', async () => {
    const MiB = 1024 * 1024;
    // Warm up every path the measurement takes, so that only the 50 MiB could make RSS grow.
    for (let i = 0; i < 3; i++) {
      expect((await streamBody(server.url, 4 * MiB, false)).status).toBe(413);
      expect((await streamBody(server.url, 4 * MiB, true)).status).toBe(413);
      const request = signed(alice, 'batch_sum', { numbers: [i] });
      expectOk(await post(server.url, 'batch_sum', request), request, alice);
    }
    const before = rssOf(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssOf(pid));
    }, 5);
    try {
      for (const declareLength of [false, true]) {
        const answer = await streamBody(server.url, 50 * MiB, declareLength);
        expect(answer.status, answer.text).toBe(413);
        const shape = JSON.parse(answer.text) as { error: SignetErrorShape };
        expect(shape.error.data.reason).toBe('PAYLOAD_TOO_LARGE');
        expect(shape.error.data.envelope).toBeUndefined();
        // Refused long before the end: the rest was never read.
        expect(answer.sent).toBeLessThan(50 * MiB);
      }
    } finally {
      clearInterval(sampler);
    }
    const after = rssOf(pid);
    peak = Math.max(peak, after);
    console.info(
      `50 MiB bodies: server RSS ${(before / MiB).toFixed(1)} MiB before, peak ` +
        `${(peak / MiB).toFixed(1)} MiB (+${((peak - before) / MiB).toFixed(1)}), after ` +
        `${(after / MiB).toFixed(1)} MiB (+${((after - before) / MiB).toFixed(1)})`,
    );
    expect(peak - before).toBeLessThan(20 * 1000 * 1000);
    await healthy();
  }, 60_000);

  it('a body nested 100 000 levels deep is 400 PARSE_ERROR, and the server stays healthy', async () => {
    const depth = 100_000;
    const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    expectRefusal(await post(server.url, 'batch_sum', deep), 400, 'PARSE_ERROR');
    // The same nesting inside a well-formed, signed envelope's args.
    const request = signed(alice, 'start_long_task', { seconds: 1, payload: {} });
    const text = JSON.stringify(request).replace('"payload":{}', `"payload":{"deep":${deep}}`);
    expectRefusal(await post(server.url, 'start_long_task', text), 400, 'PARSE_ERROR');
    const deepObject = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    expectRefusal(await post(server.url, 'batch_sum', deepObject), 400, 'PARSE_ERROR');
    await healthy();
    const fresh = signed(alice, 'batch_sum', { numbers: [1] });
    expectOk(await post(server.url, 'batch_sum', fresh), fresh, alice);
  });

  it('SIGHUP reloads the keyring and the server keeps serving', async () => {
    const reloads = () => server.output().split('keyring reloaded').length - 1;
    const before = reloads();
    process.kill(pid, 'SIGHUP');
    await eventually(async () => (reloads() > before ? true : undefined), 5_000, 'a reload');
    expect(server.child.exitCode).toBeNull();
    await healthy();
    const request = signed(alice, 'batch_sum', { numbers: [1] });
    expectOk(await post(server.url, 'batch_sum', request), request, alice);
  });
});

// ---- 7. input limits -----------------------------------------------------------------------------

describe('input limits: 400 with a reason, never a 5xx', () => {
  let app: AppServer;
  beforeAll(async () => {
    app = await startTestApp(writeKeyring(keyringOf([alice])));
    apps.splice(apps.indexOf(app), 1); // shared by this block; closed in afterAll
  });
  afterAll(async () => {
    await app?.close({ graceMs: 0 });
  });

  /** The body of a signed batch_sum whose args text is replaced after signing. */
  function withArgs(argsText: string): string {
    const request = signed(alice, 'batch_sum', { numbers: [1] });
    return JSON.stringify(request).replace('"args":{"numbers":[1]}', `"args":${argsText}`);
  }

  /** A correctly signed envelope with `args` right at a limit: it gets past check 1. */
  async function expectWithinLimits(args: Record<string, unknown>) {
    const reply = await post(app.url, 'batch_sum', signed(alice, 'batch_sum', args));
    // batch_sum's own schema refuses these args (signed): checks 1-7 all passed.
    expectRefusal(reply, 400, 'INVALID_ARGS', alice);
  }

  async function expectParseError(body: string, message: RegExp) {
    const error = expectRefusal(await post(app.url, 'batch_sum', body), 400, 'PARSE_ERROR');
    expect(error.message).toMatch(message);
  }

  it(`a string longer than ${MAX_STRING_LENGTH} characters`, async () => {
    await expectWithinLimits({ numbers: [1], s: 'x'.repeat(MAX_STRING_LENGTH) });
    await expectParseError(
      withArgs(`{"numbers":[1],"s":"${'x'.repeat(MAX_STRING_LENGTH + 1)}"}`),
      /characters in a string/,
    );
    await expectParseError(
      withArgs(`{"numbers":[1],"${'k'.repeat(MAX_STRING_LENGTH + 1)}":1}`),
      /characters in a string/,
    );
  });

  it(`an object with more than ${MAX_KEYS} keys`, async () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',');
    await expectWithinLimits(JSON.parse(`{${keys(MAX_KEYS)}}`));
    await expectParseError(withArgs(`{${keys(MAX_KEYS + 1)}}`), /keys in an object/);
  });

  it(`an array longer than ${MAX_ITEMS} items, or a body of more than ${MAX_VALUES} values`, async () => {
    // A body holds at most MAX_VALUES values, fewer than MAX_ITEMS: the item limit is for what
    // a body cannot carry (a response), and a body is refused by its count of values first.
    expect(MAX_VALUES).toBeLessThan(MAX_ITEMS);
    const items = (n: number) => `[${Array(n).fill('1').join(',')}]`;
    await expectWithinLimits({ numbers: JSON.parse(items(MAX_VALUES - 20)) });
    await expectParseError(withArgs(`{"numbers":${items(MAX_ITEMS + 1)}}`), /JSON values/);
  });

  it('non-finite numbers (1e400, -1e400 in the JSON text)', async () => {
    await expectParseError(withArgs('{"numbers":[1e400]}'), /non-finite/);
    await expectParseError(withArgs('{"numbers":[-1e400]}'), /non-finite/);
    // Finite, but whose sum overflows: the tool's schema says so, signed.
    const reply = await post(app.url, 'batch_sum', withArgs('{"numbers":[1e308,1e308]}'));
    expect(reply.status).toBeLessThan(500);
  });

  it('lone surrogates, in a value or a key', async () => {
    await expectParseError(withArgs('{"numbers":[1],"s":"\\ud800"}'), /lone surrogates/);
    await expectParseError(withArgs('{"numbers":[1],"\\udc00":1}'), /lone surrogates/);
    await expectParseError(
      JSON.stringify(signed(alice, 'batch_sum', { numbers: [1] })).replace(
        `"client_id":"${alice.clientId}"`,
        '"client_id":"a\\ud800b"',
      ),
      /lone surrogates/,
    );
    // A well-formed pair is fine (and gets as far as the tool's schema).
    await expectWithinLimits({ numbers: [1], s: '\ud83d\ude00' });
  });

  it('a body that is not application/json is 415', async () => {
    const request = signed(alice, 'batch_sum', { numbers: [1] });
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonx',
      null,
    ]) {
      expectRefusal(
        await post(app.url, 'batch_sum', request, { contentType: type }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
    }
    // The refusals spent nothing; parameters on the JSON type are fine.
    expectOk(
      await post(app.url, 'batch_sum', request, { contentType: 'application/json; charset=utf-8' }),
      request,
      alice,
    );
  });

  it('the server is healthy after all of it', async () => {
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});

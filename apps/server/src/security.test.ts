// Adversarial tests over real HTTP (DESIGN 1.3-1.5, roadmap step 3): replay under concurrency
// and across restarts, oversized and hostile bodies, key rotation without restart, rate limits,
// prototype pollution, input limits, no oracle, clock skew and job ownership.
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSignetClient, signetReason } from '@signet/client';
import { tools } from '@signet/contracts';
import {
  canonicalize,
  hmacHex,
  MAX_ITEMS,
  MAX_KEYS,
  MAX_STRING_LENGTH,
  newNonce,
  newRequestId,
  PROTOCOL_VERSION,
  type RequestEnvelope,
  type ResponseEnvelope,
  sign,
  verify,
} from '@signet/protocol';
import {
  generateSecret,
  Keyring,
  type KeyringFile,
  MemoryStore,
  type RunningSignetServer,
  type SignetErrorShape,
  type SignetRouter,
  startSignetServer,
} from '@signet/server';
import { eventually, parseSse, type ServerProcess, startProcess } from '@signet/server/testing';
import pino, { type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AppServer, startApp } from './app.ts';
import { FRONT, frontConfig, onFront } from './testing/front.ts';
import { createHandlers } from './tools/index.ts';

const SERVER_ID = 'mcp-server-001';
type Router = SignetRouter<typeof tools>;

interface Who {
  clientId: string;
  kid: string;
  secret: string;
}
const alice: Who = { clientId: 'client-001', kid: 'k1', secret: generateSecret() };
const bob: Who = { clientId: 'client-002', kid: 'k1', secret: generateSecret() };

function keyringOf(...clients: Who[][]): KeyringFile {
  return {
    server_id: SERVER_ID,
    clients: clients.map((keys) => ({
      client_id: keys[0]!.clientId,
      tools: ['*'],
      keys: keys.map((k) => ({ kid: k.kid, secret: k.secret })),
    })),
  };
}

const silent = pino({ level: 'silent' });
const dirs: string[] = [];
const apps: Array<{ close(opts?: { graceMs?: number }): Promise<void> }> = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close({ graceMs: 0 })));
});
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'signet-security-'));
  dirs.push(dir);
  return dir;
}

function writeKeyring(file: KeyringFile): string {
  const path = join(tempDir(), 'keyring.json');
  writeFileSync(path, JSON.stringify(file));
  return path;
}

/** Replaces a file atomically: a temp file in the same directory, renamed over it. */
function replaceFile(path: string, content: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, content);
  renameSync(temp, path);
}

/** The app as `pnpm serve` starts it (config from SIGNET_* variables), in this process. */
async function startTestApp(
  keyringPath: string,
  env: Record<string, string> = {},
  logger: Logger = silent,
): Promise<AppServer> {
  const app = await startApp(
    frontConfig({
      SIGNET_PORT: '0',
      SIGNET_KEYRING: keyringPath,
      SIGNET_STORE: 'memory:',
      ...env,
    }),
    logger,
  );
  apps.push(app);
  return app;
}

/** A pino logger whose records the test can read. */
function capturingLogger(): { logger: Logger; records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, records };
}

function typedClient(url: string, who: Who, opts: { now?: () => number; kid?: boolean } = {}) {
  return createSignetClient<Router>({
    url,
    serverId: SERVER_ID,
    clientId: who.clientId,
    key: opts.kid === false ? { secret: who.secret } : { kid: who.kid, secret: who.secret },
    ...(opts.now ? { now: opts.now } : {}),
  });
}

function signed(
  who: Who,
  tool: string,
  args: Record<string, unknown>,
  over: Record<string, unknown> = {},
): RequestEnvelope {
  return sign(
    {
      v: PROTOCOL_VERSION,
      request_id: newRequestId(),
      ts_ms: Date.now(),
      client_id: who.clientId,
      server_id: SERVER_ID,
      tool,
      args,
      nonce: newNonce(),
      kid: who.kid,
      ...over,
    },
    who.secret,
  ) as RequestEnvelope;
}

/**
 * Signs an envelope given as JSON text, the way a client in another language would: HMAC over
 * the JCS form of exactly what the text parses to (own `__proto__` keys included).
 */
function signText(who: Who, tool: string, argsText: string): string {
  const unsigned =
    `{"v":"${PROTOCOL_VERSION}","request_id":"${newRequestId()}","ts_ms":${Date.now()},` +
    `"client_id":"${who.clientId}","server_id":"${SERVER_ID}","tool":"${tool}",` +
    `"args":${argsText},"nonce":"${newNonce()}","kid":"${who.kid}"}`;
  const signature = hmacHex(who.secret, canonicalize(JSON.parse(unsigned)));
  return `${unsigned.slice(0, -1)},"signature":"${signature}"}`;
}

interface HttpReply {
  status: number;
  headers: Headers;
  text: string;
  body: { result?: { data: ResponseEnvelope }; error?: SignetErrorShape };
}

async function post(
  url: string,
  tool: string,
  body: unknown,
  contentType: string | null = 'application/json',
): Promise<HttpReply> {
  const response = await fetch(`${url}/trpc/${tool}`, {
    method: 'POST',
    headers: contentType === null ? {} : { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, body: JSON.parse(text) };
}

function expectOk(reply: HttpReply, request: { request_id: string; nonce: string }, who: Who) {
  expect(reply.status, reply.text).toBe(200);
  const data = reply.body.result?.data;
  if (!data) throw new Error(`no envelope in ${reply.text}`);
  expect(verify(data, who.secret)).toBe(true);
  expect(data).toMatchObject({ request_id: request.request_id, nonce: request.nonce, ok: true });
  return data;
}

/** A refusal with `status` and `reason`; signed for `who` when given, else with no envelope. */
function expectRefusal(reply: HttpReply, status: number, reason: string, who?: Who) {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.text).not.toMatch(/stack|\bat \/|node:internal|\.ts:\d/);
  const error = reply.body.error;
  if (!error) throw new Error(`no error in ${reply.text}`);
  expect(error.data.reason).toBe(reason);
  expect(error.data.httpStatus).toBe(status);
  if (who === undefined) {
    expect(error.data.envelope).toBeUndefined();
  } else {
    const envelope = error.data.envelope;
    if (!envelope) throw new Error(`no signed envelope in ${reply.text}`);
    expect(verify(envelope, who.secret)).toBe(true);
    expect(envelope).toMatchObject({ ok: false, status: 'error', error: { code: reason } });
  }
  return error;
}

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (data) => {
      throw new Error(`expected a refusal, got ${JSON.stringify(data)}`);
    },
    (error: unknown) => error,
  );
}

/** Reads a watch_job SSE stream to its end (bounded). */
async function rawWatch(url: string, request: RequestEnvelope) {
  const response = await fetch(
    `${url}/trpc/watch_job?input=${encodeURIComponent(JSON.stringify(request))}`,
    { signal: AbortSignal.timeout(10_000) },
  );
  const text = await response.text();
  const events = parseSse(text);
  return {
    status: response.status,
    messages: events.filter((e) => e.event === undefined).map((e) => JSON.parse(e.data!)),
    errors: events
      .filter((e) => e.event === 'serialized-error')
      .map((e) => JSON.parse(e.data!) as SignetErrorShape),
  };
}

// ---- 1. replay under concurrency, and across a restart ---------------------------------------

describe('replay protection', () => {
  for (const store of ['memory', 'sqlite'] as const) {
    it(`100 concurrent copies of one signed request: one 200, 99 × 409 REPLAYED_NONCE (${store} store)`, async () => {
      const keyringPath = writeKeyring(keyringOf([alice]));
      const app = await startTestApp(keyringPath, {
        SIGNET_STORE: store === 'memory' ? 'memory:' : `sqlite:${join(tempDir(), 'signet.db')}`,
      });
      const request = signed(alice, 'batch_sum', { numbers: [1, 2, 3] });
      const body = JSON.stringify(request);
      const replies = await Promise.all(
        Array.from({ length: 100 }, () => post(app.url, 'batch_sum', body)),
      );
      const ok = replies.filter((r) => r.status === 200);
      const replayed = replies.filter((r) => r.status === 409);
      expect(ok).toHaveLength(1);
      expect(replayed).toHaveLength(99);
      expectOk(ok[0]!, request, alice);
      for (const reply of replayed) expectRefusal(reply, 409, 'REPLAYED_NONCE', alice);
    });
  }

  it('a request captured before a restart is refused after it (SQLite store)', async () => {
    const keyringPath = writeKeyring(keyringOf([alice]));
    const env = { SIGNET_STORE: `sqlite:${join(tempDir(), 'signet.db')}` };
    const first = await startTestApp(keyringPath, env);
    const request = signed(alice, 'batch_sum', { numbers: [40, 2] });
    expectOk(await post(first.url, 'batch_sum', request), request, alice);
    await first.close();

    const second = await startTestApp(keyringPath, env);
    expectRefusal(await post(second.url, 'batch_sum', request), 409, 'REPLAYED_NONCE', alice);
    // The new process works: a fresh call goes through.
    const fresh = signed(alice, 'batch_sum', { numbers: [1] });
    expectOk(await post(second.url, 'batch_sum', fresh), fresh, alice);
  });
});

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
      ['--import', 'tsx', 'apps/server/src/cli.ts', 'serve'],
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

// ---- 4. key rotation without a restart ----------------------------------------------------------

describe('key rotation and keyring reload', () => {
  const k1: Who = { clientId: 'client-001', kid: 'k1', secret: generateSecret() };
  const k2: Who = { clientId: 'client-001', kid: 'k2', secret: generateSecret() };

  async function outcome(url: string, who: Who): Promise<string> {
    return typedClient(url, who)
      .batch_sum.mutate({ numbers: [1] })
      .then(
        () => 'ok',
        (error: unknown) => signetReason(error) ?? String(error),
      );
  }

  it('a rewritten keyring file takes effect within 2 s, with no restart', async () => {
    const keyringPath = writeKeyring(keyringOf([k1]));
    const app = await startTestApp(keyringPath);
    expect(await outcome(app.url, k1)).toBe('ok');
    expect(await outcome(app.url, k2)).toBe('BAD_SIGNATURE');

    const swappedAt = Date.now();
    replaceFile(keyringPath, JSON.stringify(keyringOf([k2])));
    await eventually(
      async () =>
        (await outcome(app.url, k2)) === 'ok' && (await outcome(app.url, k1)) === 'BAD_SIGNATURE'
          ? true
          : undefined,
      2_000,
      'the new keyring to take effect',
    );
    expect(Date.now() - swappedAt).toBeLessThan(2_000);
    // A raw k1 call is the same 401 as any bad signature: nothing signed.
    const request = signed(k1, 'batch_sum', { numbers: [1] });
    expectRefusal(await post(app.url, 'batch_sum', request), 401, 'BAD_SIGNATURE');
  });

  it('no call signed with the surviving key fails while the old key is removed', async () => {
    const keyringPath = writeKeyring(keyringOf([k1, k2]));
    const app = await startTestApp(keyringPath);
    // A steady stream of k2 calls, with and without kid, from 4 concurrent callers.
    const withKid = typedClient(app.url, k2);
    const withoutKid = typedClient(app.url, k2, { kid: false });
    const failures: unknown[] = [];
    let calls = 0;
    let stop = false;
    const stream = async (client: typeof withKid) => {
      while (!stop) {
        try {
          const n = calls++;
          const sum = await client.batch_sum.mutate({ numbers: [n, 1] });
          if (sum.total !== n + 1) failures.push(sum);
        } catch (error) {
          failures.push(signetReason(error) ?? error);
        }
      }
    };
    const streams = [withKid, withoutKid, withKid, withoutKid].map(stream);
    try {
      await eventually(async () => (calls > 20 ? true : undefined), 5_000, 'calls to flow');
      replaceFile(keyringPath, JSON.stringify(keyringOf([k2])));
      await eventually(
        async () => ((await outcome(app.url, k1)) === 'BAD_SIGNATURE' ? true : undefined),
        2_000,
        'k1 to be refused',
      );
      const removedAt = calls;
      await eventually(async () => (calls > removedAt + 20 ? true : undefined), 5_000, 'more');
    } finally {
      stop = true;
      await Promise.all(streams);
    }
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(40);
  });

  it('a bad keyring file is refused and the old keyring stays in force; reloadKeyring() reloads', async () => {
    const keyringPath = writeKeyring(keyringOf([k1]));
    const { logger, records } = capturingLogger();
    const app = await startTestApp(keyringPath, {}, logger);
    const refusals = () => records.filter((r) => r.msg === 'keyring refused; keeping the old one');

    const shortSecret = 'too-short-secret-31-characters!';
    expect(shortSecret).toHaveLength(31);
    const bad = [
      '{"server_id": "mcp-server-001", "clients": [', // not JSON
      JSON.stringify(keyringOf([{ ...k2, secret: shortSecret }])), // secret too short
      JSON.stringify({ server_id: SERVER_ID, clients: [] }), // no clients
    ];
    for (const content of bad) {
      const before = refusals().length;
      replaceFile(keyringPath, content);
      // The watcher sees the change and refuses it; the old keyring stays.
      await eventually(
        async () => (refusals().length > before ? true : undefined),
        2_000,
        'the watcher to refuse the file',
      );
      expect(app.reloadKeyring()).toBe(false);
      expect(await outcome(app.url, k1)).toBe('ok');
      expect(await outcome(app.url, k2)).toBe('BAD_SIGNATURE');
    }
    // Logs say why, never with the secret.
    expect(JSON.stringify(records)).not.toContain(shortSecret);
    expect(JSON.stringify(records)).not.toContain(k1.secret);

    // A good file: reloadKeyring (what SIGHUP calls) swaps it in at once.
    writeFileSync(keyringPath, JSON.stringify(keyringOf([k2])));
    expect(app.reloadKeyring()).toBe(true);
    expect(await outcome(app.url, k2)).toBe('ok');
    expect(await outcome(app.url, k1)).toBe('BAD_SIGNATURE');
  });

  it('a keyring with a short secret stops the server at start-up with a clear message', async () => {
    const keyringPath = writeKeyring(keyringOf([{ ...k1, secret: 'x'.repeat(31) }]));
    await expect(startTestApp(keyringPath)).rejects.toThrow(/at least 32 characters/);
  });
});

// ---- 5. rate limit --------------------------------------------------------------------------------

describe('rate limit (SIGNET_RATE_LIMIT / SIGNET_RATE_BURST)', () => {
  const env = { SIGNET_RATE_LIMIT: '5', SIGNET_RATE_BURST: '5' };

  /** A server on a clock the test moves, limited as the environment says. */
  async function startOnClock(keyring: KeyringFile) {
    const config = frontConfig({ ...env, SIGNET_PORT: '0' });
    expect(config.rateLimit).toEqual({ perSecond: 5, burst: 5 });
    const clock = { now: Date.now() };
    const server: RunningSignetServer<typeof tools> = await startSignetServer({
      contracts: tools,
      handlers: createHandlers(config),
      keyring: () => new Keyring(keyring),
      store: new MemoryStore(),
      logger: silent,
      rateLimit: config.rateLimit!,
      httpFront: config.httpFront,
      now: () => clock.now,
    });
    apps.push(server);
    expect(server.httpFront).toBe(FRONT);
    return { server, clock };
  }

  it('the 6th quick call is 429 RATE_LIMITED with Retry-After, signed; another client is unaffected', async () => {
    const { server, clock } = await startOnClock(keyringOf([alice], [bob]));
    const call = (who: Who) => {
      const request = signed(who, 'batch_sum', { numbers: [1] }, { ts_ms: clock.now });
      return post(server.url, 'batch_sum', request).then((reply) => ({ request, reply }));
    };
    for (let i = 0; i < 5; i++) {
      const { request, reply } = await call(alice);
      expectOk(reply, request, alice);
    }
    const { reply: limited } = await call(alice);
    expectRefusal(limited, 429, 'RATE_LIMITED', alice);
    const retryAfter = limited.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Bob's budget is his own.
    for (let i = 0; i < 5; i++) {
      const { request, reply } = await call(bob);
      expectOk(reply, request, bob);
    }
    expectRefusal((await call(alice)).reply, 429, 'RATE_LIMITED', alice);
  });

  it('a rate-limited call does not spend its nonce: the same body succeeds after Retry-After', async () => {
    const { server, clock } = await startOnClock(keyringOf([alice]));
    for (let i = 0; i < 5; i++) {
      const request = signed(alice, 'batch_sum', { numbers: [i] }, { ts_ms: clock.now });
      expectOk(await post(server.url, 'batch_sum', request), request, alice);
    }
    const request = signed(alice, 'batch_sum', { numbers: [7] }, { ts_ms: clock.now });
    const limited = await post(server.url, 'batch_sum', request);
    expectRefusal(limited, 429, 'RATE_LIMITED', alice);
    clock.now += Number(limited.headers.get('retry-after')) * 1000;
    const data = expectOk(await post(server.url, 'batch_sum', request), request, alice);
    expect(data.result).toEqual({ count: 1, total: 7 });
    // Now it is spent.
    expectRefusal(await post(server.url, 'batch_sum', request), 409, 'REPLAYED_NONCE', alice);
  });

  it('forged calls in the name of a client do not spend its budget', async () => {
    const { server, clock } = await startOnClock(keyringOf([alice]));
    const forger: Who = { ...alice, secret: generateSecret() };
    for (let i = 0; i < 20; i++) {
      const forged = signed(forger, 'batch_sum', { numbers: [1] }, { ts_ms: clock.now });
      expectRefusal(await post(server.url, 'batch_sum', forged), 401, 'BAD_SIGNATURE');
    }
    for (let i = 0; i < 5; i++) {
      const request = signed(alice, 'batch_sum', { numbers: [1] }, { ts_ms: clock.now });
      expectOk(await post(server.url, 'batch_sum', request), request, alice);
    }
  });

  it('the app started from the environment limits in real time, and the refused body gets through once the bucket refills', async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice], [bob])), env);
    // 10 calls at once: the burst of 5 passes (plus at most a token or two refilled while a
    // busy machine gets through them), the rest are refused.
    const requests = Array.from({ length: 10 }, (_, i) =>
      signed(alice, 'batch_sum', { numbers: [i] }),
    );
    const replies = await Promise.all(requests.map((r) => post(app.url, 'batch_sum', r)));
    const passed = replies.filter((r) => r.status === 200).length;
    expect(passed).toBeGreaterThanOrEqual(5);
    expect(passed).toBeLessThanOrEqual(7);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(10 - passed);
    const index = replies.findIndex((r) => r.status === 429);
    expectRefusal(replies[index]!, 429, 'RATE_LIMITED', alice);
    expect(replies[index]!.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    const other = signed(bob, 'batch_sum', { numbers: [1] });
    expectOk(await post(app.url, 'batch_sum', other), other, bob);
    // Retry the refused body until it passes (a token refills in 200 ms at 5/s).
    const refused = requests[index]!;
    const statuses: number[] = [];
    const retried = await eventually(
      async () => {
        const reply = await post(app.url, 'batch_sum', refused);
        statuses.push(reply.status);
        return reply.status === 429 ? undefined : reply;
      },
      5_000,
      'the bucket to refill',
    );
    expect(statuses.every((s) => s === 429 || s === 200)).toBe(true);
    expectOk(retried, refused, alice);
  });
});

// ---- 6. prototype pollution -----------------------------------------------------------------------

describe('__proto__, constructor and prototype keys', () => {
  let app: AppServer;
  let prototypeBefore: string[];
  beforeAll(() => {
    prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
  });

  function expectUnpolluted() {
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    const probe = {} as Record<string, unknown>;
    for (const key of ['polluted', 'x', 'isAdmin']) expect(probe[key]).toBeUndefined();
  }

  async function pollUntilDone(url: string, who: Who, jobId: string): Promise<HttpReply> {
    return eventually(
      async () => {
        const reply = await post(url, 'poll_job', signed(who, 'poll_job', { job_id: jobId }));
        expect(reply.status, reply.text).toBe(200);
        return reply.body.result?.data.status === 'done' ? reply : undefined;
      },
      10_000,
      'the job to finish',
    );
  }

  for (const store of ['memory', 'sqlite'] as const) {
    it(`a payload {"__proto__": {"x": 1}, "a": 1} is refused with a signed 400 INVALID_ARGS, never altered (${store} store)`, async () => {
      app = await startTestApp(writeKeyring(keyringOf([alice])), {
        SIGNET_STORE: store === 'memory' ? 'memory:' : `sqlite:${join(tempDir(), 'signet.db')}`,
      });
      const text = signText(
        alice,
        'start_long_task',
        '{"seconds":1,"payload":{"__proto__":{"x":1},"a":1}}',
      );
      const error = expectRefusal(
        await post(app.url, 'start_long_task', text),
        400,
        'INVALID_ARGS',
        alice,
      );
      expect(JSON.stringify(error.data.details)).toContain('payload');
      expectUnpolluted();
    });
  }

  it('constructor and prototype keys come back unaltered as the job output', async () => {
    app = await startTestApp(writeKeyring(keyringOf([alice])), {
      SIGNET_STORE: `sqlite:${join(tempDir(), 'signet.db')}`,
    });
    const payload =
      '{"a":1,"constructor":{"prototype":{"polluted":true}},"prototype":{"polluted":true},' +
      '"nested":{"constructor":{"name":"x"},"hasOwnProperty":1,"toString":"y"}}';
    const text = signText(alice, 'start_long_task', `{"seconds":1,"payload":${payload}}`);
    const started = await post(app.url, 'start_long_task', text);
    expect(started.status, started.text).toBe(200);
    const jobId = started.body.result?.data.result?.job_id as string;
    const done = await pollUntilDone(app.url, alice, jobId);
    // The result is exactly what was sent: the same keys and values, so the same canonical text.
    const result = done.body.result?.data.result;
    expect(Object.keys(result ?? {})).toHaveLength(4);
    expect(canonicalize(result)).toBe(canonicalize(JSON.parse(payload)));
    // On the wire: the fast front sends the canonical text it signed; tRPC's adapter serializes
    // the envelope object, whose keys come in the order they were made (here, the payload's own).
    expect(done.text).toContain(FRONT === 'signet' ? canonicalize(JSON.parse(payload)) : payload);
    expect(verify(done.body.result!.data, alice.secret)).toBe(true);
    expectUnpolluted();
  });

  it('__proto__ anywhere in args is refused, signed; a top-level __proto__ is BAD_ENVELOPE', async () => {
    app = await startTestApp(writeKeyring(keyringOf([alice])));
    for (const args of [
      '{"numbers":[1],"__proto__":{"polluted":true}}',
      '{"__proto__":{"polluted":true},"numbers":[1]}',
      '{"numbers":[1],"__proto__":[]}',
    ]) {
      const reply = await post(app.url, 'batch_sum', signText(alice, 'batch_sum', args));
      expectRefusal(reply, 400, 'INVALID_ARGS', alice);
    }
    const nested = signText(
      alice,
      'start_long_task',
      '{"seconds":1,"payload":{"deep":[{"ok":1},{"__proto__":{"polluted":true}}]}}',
    );
    expectRefusal(await post(app.url, 'start_long_task', nested), 400, 'INVALID_ARGS', alice);

    const topLevel = JSON.stringify(signed(alice, 'batch_sum', { numbers: [1] })).replace(
      /^\{/,
      '{"__proto__":{"polluted":true},',
    );
    expectRefusal(await post(app.url, 'batch_sum', topLevel), 400, 'BAD_ENVELOPE');
    expectUnpolluted();
  });

  it('a __proto__ key slipped into a signed request breaks its signature', async () => {
    // The signature covers exactly what the body parses to: a key added in transit, even one
    // that a schema would drop, is caught at check 3.
    app = await startTestApp(writeKeyring(keyringOf([alice])));
    const request = signed(alice, 'batch_sum', { numbers: [1, 2] });
    const tampered = JSON.stringify(request).replace(
      '"args":{',
      '"args":{"__proto__":{"polluted":true},',
    );
    expect(tampered).not.toBe(JSON.stringify(request));
    expectRefusal(await post(app.url, 'batch_sum', tampered), 401, 'BAD_SIGNATURE');
    // The untouched request still goes through: the refusal spent nothing.
    expectOk(await post(app.url, 'batch_sum', request), request, alice);
    expectUnpolluted();
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

  it(`an array longer than ${MAX_ITEMS} items`, async () => {
    const items = (n: number) => `[${Array(n).fill('1').join(',')}]`;
    await expectWithinLimits({ numbers: JSON.parse(items(MAX_ITEMS)) });
    await expectParseError(withArgs(`{"numbers":${items(MAX_ITEMS + 1)}}`), /items in an array/);
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
      expectRefusal(await post(app.url, 'batch_sum', request, type), 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
    // The refusals spent nothing; parameters on the JSON type are fine.
    expectOk(
      await post(app.url, 'batch_sum', request, 'application/json; charset=utf-8'),
      request,
      alice,
    );
  });

  it('the server is healthy after all of it', async () => {
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});

// ---- 8. no oracle ---------------------------------------------------------------------------------

describe('no oracle between an unknown client and a bad signature', () => {
  it('same status, reason and body, whatever is wrong', async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice])));
    const stranger: Who = { clientId: 'client-999', kid: 'k1', secret: generateSecret() };
    const forger: Who = { ...alice, secret: generateSecret() };
    const cases = [
      signed(stranger, 'batch_sum', { numbers: [1] }), // unknown client
      signed(forger, 'batch_sum', { numbers: [1] }), // known client, wrong key
      signed({ ...forger, kid: 'k9' }, 'batch_sum', { numbers: [1] }), // unknown kid
      signed(alice, 'batch_sum', { numbers: [1] }, { kid: 'k9' }), // right key, wrong kid
      { ...signed(stranger, 'batch_sum', { numbers: [1] }), kid: undefined }, // no kid
      (() => {
        const { kid: _kid, ...unsigned } = signed(forger, 'batch_sum', { numbers: [1] });
        return sign(unsigned, forger.secret);
      })(),
    ];
    const replies = await Promise.all(cases.map((body) => post(app.url, 'batch_sum', body)));
    for (const reply of replies) {
      expectRefusal(reply, 401, 'BAD_SIGNATURE');
      expect(reply.text).toBe(replies[0]!.text);
      expect(reply.headers.get('content-type')).toBe(replies[0]!.headers.get('content-type'));
      expect(reply.headers.get('content-length')).toBe(replies[0]!.headers.get('content-length'));
    }
    // Nothing in the answer names the client.
    expect(replies[0]!.text).not.toContain('client-');
  });
});

// ---- 9. clock skew -------------------------------------------------------------------------------

describe('clock skew', () => {
  for (const [label, skew] of [
    ['10 minutes behind', -600_000],
    ['10 minutes ahead', 600_000],
  ] as const) {
    it(`a typed client ${label} learns the offset from the signed refusal and gets through`, async () => {
      const app = await startTestApp(writeKeyring(keyringOf([alice])));
      const statuses: number[] = [];
      const countingFetch: typeof fetch = async (input, init) => {
        const response = await fetch(input, init);
        statuses.push(response.status);
        return response;
      };
      const client = createSignetClient<Router>({
        url: app.url,
        serverId: SERVER_ID,
        clientId: alice.clientId,
        key: { kid: alice.kid, secret: alice.secret },
        now: () => Date.now() + skew,
        fetch: countingFetch,
      });
      await expect(client.batch_sum.mutate({ numbers: [1, 2] })).resolves.toEqual({
        count: 2,
        total: 3,
      });
      expect(statuses).toEqual([401, 200]);
      // Learnt once: the next call goes straight through.
      await expect(client.batch_sum.mutate({ numbers: [3] })).resolves.toEqual({
        count: 1,
        total: 3,
      });
      expect(statuses).toEqual([401, 200, 200]);
    });
  }

  it("a raw stale call's signed refusal carries the server's clock in details.server_ts_ms", async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice])));
    const request = signed(alice, 'batch_sum', { numbers: [1] }, { ts_ms: Date.now() - 600_000 });
    const before = Date.now();
    const reply = await post(app.url, 'batch_sum', request);
    const after = Date.now();
    const error = expectRefusal(reply, 401, 'STALE_REQUEST', alice);
    const details = error.data.envelope?.error?.details as { server_ts_ms: number };
    expect(details.server_ts_ms).toBeGreaterThanOrEqual(before);
    expect(details.server_ts_ms).toBeLessThanOrEqual(after);
    expect(error.data.details).toEqual(details);
    // The envelope's own ts_ms is the server's clock too (read again when signing).
    expect(error.data.envelope!.ts_ms).toBeGreaterThanOrEqual(details.server_ts_ms);
    expect(error.data.envelope!.ts_ms).toBeLessThanOrEqual(after);
  });
});

// ---- 10. job ownership --------------------------------------------------------------------------

describe('job ownership', () => {
  it("another client's job is 404 JOB_NOT_FOUND on poll_job, cancel_job and watch_job", async () => {
    const app = await startTestApp(writeKeyring(keyringOf([alice], [bob])));
    const owner = typedClient(app.url, alice);
    const other = typedClient(app.url, bob);
    const { job_id } = await owner.start_long_task.mutate({ seconds: 20, payload: { secret: 1 } });

    for (const attempt of [
      other.poll_job.mutate({ job_id }),
      other.cancel_job.mutate({ job_id }),
    ]) {
      const error = await rejectionOf(attempt);
      expect(signetReason(error)).toBe('JOB_NOT_FOUND');
      expect((error as { data?: { httpStatus?: number } }).data?.httpStatus).toBe(404);
    }

    // The typed client's subscription.
    const watched = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('watch_job did not fail')), 10_000);
      const subscription = other.watch_job.subscribe(
        { job_id },
        {
          onData: (state) => {
            clearTimeout(timer);
            subscription.unsubscribe();
            reject(new Error(`got ${JSON.stringify(state)}`));
          },
          onError: (error) => {
            clearTimeout(timer);
            resolve(error);
          },
        },
      );
    });
    expect(signetReason(watched)).toBe('JOB_NOT_FOUND');

    // Raw SSE: a serialized-error event with the reason, signed for the asker.
    const request = signed(bob, 'watch_job', { job_id });
    const raw = await rawWatch(app.url, request);
    expect(raw.messages).toEqual([]);
    expect(raw.errors).toHaveLength(1);
    expect(raw.errors[0]!.data.reason).toBe('JOB_NOT_FOUND');
    const envelope = raw.errors[0]!.data.envelope!;
    expect(verify(envelope, bob.secret)).toBe(true);
    expect(envelope).toMatchObject({ nonce: request.nonce, error: { code: 'JOB_NOT_FOUND' } });

    // Someone else's job and no job at all are told apart by nothing.
    const mine = await post(app.url, 'poll_job', signed(bob, 'poll_job', { job_id }));
    const none = await post(
      app.url,
      'poll_job',
      signed(bob, 'poll_job', { job_id: crypto.randomUUID() }),
    );
    expectRefusal(mine, 404, 'JOB_NOT_FOUND', bob);
    expectRefusal(none, 404, 'JOB_NOT_FOUND', bob);
    expect(mine.body.error?.message).toBe(none.body.error?.message);
    expect(mine.body.error?.data.envelope?.error).toEqual(none.body.error?.data.envelope?.error);

    // The owner's job is untouched by the other client's cancel.
    const state = await owner.poll_job.mutate({ job_id });
    expect(['queued', 'running']).toContain(state.status);
    await expect(owner.cancel_job.mutate({ job_id })).resolves.toMatchObject({
      status: 'cancelled',
    });
  });
});

// ---- errors and logs --------------------------------------------------------------------------

describe('errors and logs', () => {
  it('no refusal carries a stack trace or an internal message, and no log line carries a secret', async () => {
    const { logger, records } = capturingLogger();
    logger.level = 'trace';
    const app = await startTestApp(writeKeyring(keyringOf([alice])), {}, logger);
    const forger: Who = { ...alice, secret: generateSecret() };
    const replayed = signed(alice, 'batch_sum', { numbers: [1] });
    await post(app.url, 'batch_sum', replayed);
    const replies = [
      await post(app.url, 'batch_sum', signed(forger, 'batch_sum', { numbers: [1] })),
      await post(app.url, 'batch_sum', replayed),
      await post(app.url, 'batch_sum', signed(alice, 'batch_sum', { numbers: [] })),
      await post(app.url, 'batch_sum', signed(alice, 'batch_sum', { numbers: [1e308, 1e308] })),
      await post(app.url, 'batch_sum', signed(alice, 'batch_sum', { n: 1 }, { ts_ms: 0 })),
      await post(app.url, 'batch_sum', signed(alice, 'batch_sum', { n: 1 }, { server_id: 'x' })),
      await post(app.url, 'poll_job', signed(alice, 'poll_job', { job_id: 'nope' })),
      await post(app.url, 'no_such_tool', signed(alice, 'no_such_tool', {})),
      await post(app.url, 'batch_sum', '{"v":'),
      await post(app.url, 'batch_sum', 'x'.repeat(2 * 1024 * 1024)),
      await post(app.url, 'batch_sum', replayed, 'text/plain'),
    ];
    for (const reply of replies) {
      expect(reply.status).toBeGreaterThanOrEqual(400);
      expect(reply.status).toBeLessThan(500);
      expect(reply.text).not.toMatch(/stack|\bat \/|node:internal|\.ts:\d|Error:/);
      expect(reply.text).not.toContain(alice.secret);
      expect(reply.text).not.toContain(forger.secret);
    }
    const logged = JSON.stringify(records);
    expect(logged).not.toContain(alice.secret);
    expect(logged).not.toContain(forger.secret);
  });
});

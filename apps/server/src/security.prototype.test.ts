// Adversarial tests over real HTTP: prototype pollution. `__proto__`, `constructor` and
// `prototype` keys in signed requests are refused or carried through unaltered (memory and SQLite
// stores), never merged into a prototype, and a key slipped in after signing breaks the signature.
import { join } from 'node:path';
import { canonicalize, verify } from '@signet/protocol';
import { eventually } from '@signet/server/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AppServer } from './app.ts';
import { FRONT } from './testing/front.ts';
import {
  alice,
  cleanUpAfterEachTest,
  expectOk,
  expectRefusal,
  type HttpReply,
  keyringOf,
  post,
  signed,
  startTestApp,
  tempDir,
  type Who,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

/**
 * A signed envelope whose args are given as JSON text, as a client in another language would
 * sign it: over exactly what the text parses to (JSON.parse keeps own `__proto__` keys, and
 * JSON.stringify writes them back).
 */
function signText(who: Who, tool: string, argsText: string): string {
  return JSON.stringify(signed(who, tool, JSON.parse(argsText)));
}

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
        return reply.json?.result?.data.status === 'done' ? reply : undefined;
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
    const jobId = started.json?.result?.data.result?.job_id as string;
    const done = await pollUntilDone(app.url, alice, jobId);
    // The result is exactly what was sent: the same keys and values, so the same canonical text.
    const result = done.json?.result?.data.result;
    expect(Object.keys(result ?? {})).toHaveLength(4);
    expect(canonicalize(result)).toBe(canonicalize(JSON.parse(payload)));
    // On the wire: the fast front sends the canonical text it signed; tRPC's adapter serializes
    // the envelope object, whose keys come in the order they were made (here, the payload's own).
    expect(done.text).toContain(FRONT === 'signet' ? canonicalize(JSON.parse(payload)) : payload);
    expect(verify(done.json!.result!.data, alice.secret)).toBe(true);
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

// A client that goes away mid-body (W13 of issue 21), over real HTTP on both fronts: nothing went
// wrong in the server, so nothing is logged at error level, and no stack.
import { connect } from 'node:net';
import { eventually } from '@signet/server/testing';
import { describe, expect, it } from 'vitest';
import {
  alice,
  capturingLogger,
  cleanUpAfterEachTest,
  keyringOf,
  signed,
  startTestApp,
  writeKeyring,
} from './testing/http.ts';

cleanUpAfterEachTest();

const GONE = 'the client went away before its request was read';

/** Sends `head` and `part` of a body on a raw socket, waits until the server has them, then resets. */
async function sendHalfThenVanish(url: string, head: string, part: string, reset: boolean) {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port) });
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  await new Promise((resolve) => socket.write(`${head}\r\n\r\n${part}`, resolve));
  if (reset) socket.resetAndDestroy();
  else socket.destroy();
}

describe.each(['signet', 'trpc'])('a client gone mid-body, on the %s front', (front) => {
  it('is logged at debug, without a stack, and never at error level', async () => {
    const { logger, records } = capturingLogger();
    logger.level = 'debug';
    const app = await startTestApp(
      writeKeyring(keyringOf([alice])),
      { SIGNET_HTTP: front },
      logger,
    );
    const body = JSON.stringify(signed(alice, 'batch_sum', { numbers: [1, 2, 3] }));
    const half = body.slice(0, body.length / 2);
    const post = 'POST /trpc/batch_sum HTTP/1.1\r\nhost: x\r\ncontent-type: application/json';
    const cases = [
      [`${post}\r\ncontent-length: ${body.length}`, half, false],
      [`${post}\r\ncontent-length: ${body.length}`, half, true],
      [`${post}\r\ntransfer-encoding: chunked`, `${half.length.toString(16)}\r\n${half}\r\n`, true],
    ] as const;
    for (const [i, [head, part, reset]] of cases.entries()) {
      await sendHalfThenVanish(app.url, head, part, reset);
      await eventually(
        async () => (records.filter((r) => r.msg === GONE).length > i ? true : undefined),
        5_000,
        'the server to see the client go',
      );
    }
    expect(records.filter((r) => (r.level as number) >= 40)).toEqual([]);
    for (const record of records.filter((r) => r.msg === GONE)) {
      expect(record.level).toBe(20); // pino's debug
      expect(record.err).toBeUndefined();
      expect(JSON.stringify(record)).not.toMatch(/\bat .*\.ts:\d+/);
    }
    // The server serves on.
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});

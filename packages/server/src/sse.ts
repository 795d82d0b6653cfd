import type { ServerResponse } from 'node:http';
import type { TRPCError } from '@trpc/server';
import { errorShape } from './trpc.ts';

// watch_job's Server-Sent Events, byte for byte as tRPC's own adapter writes them (sse.test.ts
// holds them to it), so that tRPC's client and any EventSource read either front alike.

/** What tRPC's SSE adapter answers a subscription with (its `sseHeaders`, and its `vary`). */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
  connection: 'keep-alive',
  vary: 'trpc-accept, accept',
};

/**
 * tRPC's SSE events, as its `sseStreamProducer` writes them: each field on a line of its own,
 * then two more newlines. `sse.test.ts` holds these to tRPC's own output.
 */
export const sseEvents = {
  connected: 'event: connected\ndata: {}\n\n\n',
  data: (json: string, id: string) => `data: ${json}\nid: ${id}\n\n\n`,
  return: 'event: return\ndata: \n\n\n',
  error: (json: string) => `event: serialized-error\ndata: ${json}\n\n\n`,
  ping: 'event: ping\ndata: \n\n\n',
};

/**
 * Writes a `data` event whose JSON text is in pieces (`sseEvents.data`, byte for byte): the
 * shared bytes of a job update's result are written as they are, not copied per stream.
 * Returns what the last write returned (false: wait for 'drain').
 */
export function writeSseData(
  res: ServerResponse,
  pieces: { head: string; result: { bytes: Buffer }; tail: string },
  id: string,
): boolean {
  res.write(`data: ${pieces.head}`);
  res.write(pieces.result.bytes);
  return res.write(`${pieces.tail}\nid: ${id}\n\n\n`);
}

/** A watch refused before its stream began: `connected`, then its one `serialized-error`. */
export function sendSseRefusal(res: ServerResponse, error: TRPCError, path: string): void {
  if (!res.headersSent) {
    res.writeHead(200, SSE_HEADERS);
    res.write(sseEvents.connected);
  }
  res.end(sseEvents.error(JSON.stringify(errorShape(error, path))));
}

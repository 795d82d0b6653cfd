import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { CanonicalResult } from '@signet/protocol';

// The HTTP response of each watch_job stream, as both fronts serve it (issue 21, V2): a stream
// whose client does not take what it was sent is closed after a bound, and the stream holds its
// client's watch slot until its response is over (all of it handed to the OS, or the connection
// closed), not only until its last update was signed, so the per-client cap
// (SIGNET_MAX_WATCHES_PER_CLIENT) also bounds the streams with data waiting.

/** The response of the watch a context belongs to (one context object per watch call). */
const responses = new WeakMap<object, ServerResponse>();

/**
 * Watches `res`, the response of a watch_job call made with context `ctx`: while anything of it
 * is waiting to go out, at every check for `stallMs` (the SSE ping interval), its connection is
 * destroyed. A reading client drains its socket at once; one that has not taken what was written
 * a whole interval ago is not reading, and holds that data (and its slot) for nothing.
 */
export function guardWatchResponse(ctx: object, res: ServerResponse, stallMs: number): void {
  responses.set(ctx, res);
  const checkMs = Math.max(10, Math.floor(stallMs / 4));
  let waitingSince: number | undefined;
  const timer = setInterval(() => {
    if (res.writableLength === 0) {
      waitingSince = undefined;
      return;
    }
    const now = Date.now();
    waitingSince ??= now;
    if (now - waitingSince >= stallMs) {
      stop();
      // A reset, not a close: what the kernel holds for the peer is dropped at once too.
      const socket = res.socket;
      if (socket) socket.resetAndDestroy();
      else res.destroy();
    }
  }, checkMs);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    res.off('finish', stop);
    res.off('close', stop);
  };
  // ('finish': all of it was handed to the OS.)
  res.once('finish', stop);
  res.once('close', stop);
}

/**
 * Calls `release` once the response of the watch made with `ctx` is over: at once if there is no
 * such response (a front that does not guard its watches) or it is over already.
 */
export function whenWatchResponseEnds(ctx: object, release: () => void): void {
  const res = responses.get(ctx);
  if (!res || res.closed || res.destroyed || res.writableFinished) {
    release();
    return;
  }
  // (A ServerResponse emits 'close' once it is finished or its connection closed.)
  res.once('close', release);
}

// tRPC's adapter writes each envelope as JSON.stringify makes it, a copy per stream. On a front
// that splices (trpc-front.ts), a watch update's result is a stand-in that serializes to a random
// token, and the response's writes put the shared bytes in its place: the same JSON text, one copy.

/** What a splicing watch's response has still to write in place of each token. */
const splicing = new WeakMap<object, Map<string, Buffer>>();
const TOKEN = 'signet-shared-result:';
const QUOTED_TOKEN = Buffer.from(`"${TOKEN}`);

/** Splices the shared results of the watch made with `ctx` into what is written to `res`. */
export function spliceSharedResults(ctx: object, res: ServerResponse): void {
  const pending = new Map<string, Buffer>();
  splicing.set(ctx, pending);
  const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  res.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (pending.size === 0 || !(chunk instanceof Uint8Array)) return write(chunk, ...rest);
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const at = bytes.indexOf(QUOTED_TOKEN);
    const end = at < 0 ? -1 : bytes.indexOf(0x22, at + QUOTED_TOKEN.length);
    const result = end < 0 ? undefined : pending.get(bytes.toString('latin1', at + 1, end));
    if (!result) return write(chunk, ...rest);
    pending.delete(bytes.toString('latin1', at + 1, end));
    write(bytes.subarray(0, at));
    write(result);
    return write(bytes.subarray(end + 1), ...rest);
  }) as typeof res.write;
}

/**
 * What stands for `result` in the envelope of a watch made with `ctx`, if its front splices
 * (else undefined: the envelope keeps its result): an object whose JSON is a fresh token.
 */
export function sharedResultStandIn(ctx: object, result: CanonicalResult): object | undefined {
  const pending = splicing.get(ctx);
  if (!pending) return undefined;
  const token = `${TOKEN}${randomUUID()}`;
  pending.set(token, result.bytes);
  return { toJSON: () => token };
}

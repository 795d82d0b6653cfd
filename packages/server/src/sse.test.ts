// The HTTP front streams watch_job itself: its SSE must be tRPC's, byte for byte, so that
// tRPC's client (and any EventSource) reads it exactly as it reads tRPC's own adapter.
import { getTRPCErrorFromUnknown, tracked } from '@trpc/server';
import { sseStreamProducer } from '@trpc/server/unstable-core-do-not-import';
import { describe, expect, it } from 'vitest';
import { SignetError } from './errors.ts';
import { sseEvents } from './sse.ts';
import { errorShape } from './trpc.ts';

const envelopes = [
  { id: '1', data: { status: 'running', result: { job_id: 'j', progress: { current: 1 } } } },
  { id: '2', data: { status: 'done', result: { count: 168 }, note: 'a "quoted"\nline' } },
];

/** What tRPC's own SSE producer writes for `data`, as text. */
async function fromTrpc(data: AsyncIterable<unknown>): Promise<string> {
  const stream = sseStreamProducer({
    data,
    formatError: ({ error }) => errorShape(getTRPCErrorFromUnknown(error), 'watch_job'),
  });
  return new Response(stream as ReadableStream<Uint8Array>).text();
}

describe("watch_job's SSE framing", () => {
  it("is tRPC's for a stream of updates that ends", async () => {
    const trpc = await fromTrpc(
      (async function* () {
        for (const { id, data } of envelopes) yield tracked(id, data);
      })(),
    );
    const ours =
      sseEvents.connected +
      envelopes.map(({ id, data }) => sseEvents.data(JSON.stringify(data), id)).join('') +
      sseEvents.return;
    expect(ours).toBe(trpc);
  });

  it("is tRPC's for a refusal, before or after updates", async () => {
    const refusal = new SignetError('JOB_NOT_FOUND', 'no such job');
    const shape = JSON.stringify(errorShape(refusal, 'watch_job'));
    const before = await fromTrpc(
      // biome-ignore lint/correctness/useYield: a stream that fails before its first update
      (async function* () {
        throw refusal;
      })(),
    );
    expect(sseEvents.connected + sseEvents.error(shape)).toBe(before);
    const after = await fromTrpc(
      (async function* () {
        yield tracked(envelopes[0]!.id, envelopes[0]!.data);
        throw refusal;
      })(),
    );
    expect(
      sseEvents.connected +
        sseEvents.data(JSON.stringify(envelopes[0]!.data), envelopes[0]!.id) +
        sseEvents.error(shape),
    ).toBe(after);
  });

  it('pings as tRPC pings a stream that has nothing to say', async () => {
    const stream = sseStreamProducer({
      data: (async function* () {
        await new Promise((resolve) => setTimeout(resolve, 60));
        yield tracked('1', { status: 'done' });
      })(),
      ping: { enabled: true, intervalMs: 20 },
      formatError: ({ error }) => errorShape(getTRPCErrorFromUnknown(error), 'watch_job'),
    });
    const text = await new Response(stream as ReadableStream<Uint8Array>).text();
    expect(text).toContain(sseEvents.ping);
    expect(text.replaceAll(sseEvents.ping, '')).toBe(
      sseEvents.connected + sseEvents.data('{"status":"done"}', '1') + sseEvents.return,
    );
  });
});

// Plain tRPC v11 on its standalone adapter: the same procedure, unsigned.
import type { AddressInfo } from 'node:net';
import { initTRPC } from '@trpc/server';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import { z } from 'zod';

const t = initTRPC.create();
const router = t.router({
  batch_sum: t.procedure
    .input(z.strictObject({ numbers: z.array(z.number()).min(1).max(10_000) }))
    .mutation(({ input }) => ({
      count: input.numbers.length,
      total: input.numbers.reduce((a, b) => a + b, 0),
    })),
});
const server = createHTTPServer({ router });
server.listen(0, '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

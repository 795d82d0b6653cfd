import { createTRPCClient, httpLink, type TRPCClient } from '@trpc/client';
import type { AnyTRPCRouter } from '@trpc/server';
import { checkCredentials } from './envelopes.ts';
import { type SignetLinkOptions, signetLink } from './link.ts';

export type SignetClientOptions = SignetLinkOptions;

/**
 * A typed tRPC client whose every call is a signed envelope and whose every answer is checked:
 * `await client.batch_sum.mutate({ numbers: [1, 2] })` returns `{ count, total }`.
 */
export function createSignetClient<TRouter extends AnyTRPCRouter>(
  opts: SignetClientOptions,
): TRPCClient<TRouter> {
  checkCredentials(opts);
  return createTRPCClient<TRouter>({
    links: [
      signetLink<TRouter>(opts),
      httpLink({
        url: `${opts.url}/trpc`,
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
      } as Parameters<typeof httpLink<TRouter>>[0]),
    ],
  });
}

// `@signet/server/node`: Signet's request handlers, for an app that runs its own `node:http`
// server (`startSignetServer` does all of this for you).
import { createSignetRequestHandler } from './http.ts';
import { createTrpcRequestHandler } from './trpc-front.ts';

export { createLimitedServer, httpLimits } from './http-limits.ts';
export { createSignetRequestHandler, createTrpcRequestHandler };

/** What `createSignetRequestHandler` takes: a Signet's router and services (see `createSignet`). */
export type SignetRequestHandlerOptions = Parameters<typeof createSignetRequestHandler>[0];
/** What `createTrpcRequestHandler` takes besides the Signet it serves. */
export type TrpcRequestHandlerOptions = NonNullable<Parameters<typeof createTrpcRequestHandler>[1]>;

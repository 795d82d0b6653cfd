// `@signet/server/redis`: a shared backend for many servers and workers. Needs the optional
// peers `ioredis` and `bullmq`.
export {
  DEFAULT_NAMESPACE,
  namespaceKeys,
  type RedisBackendOptions,
  redisBackend,
  startSignetWorker,
} from './redis/backend.ts';
export { redactUrl } from './redis/connection.ts';

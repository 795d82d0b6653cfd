import type { Redis } from 'ioredis';
import { StoreUnavailableError } from '../errors.ts';
import type { NonceStore } from '../stores/types.ts';

/** Nonces shared by every replica: one atomic `SET NX PX` per call; Redis expires them. */
export class RedisNonceStore implements NonceStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'signet',
    private readonly now: () => number = Date.now,
  ) {}

  async claim(clientId: string, nonce: string, expiresAtMs: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(expiresAtMs - this.now()));
    try {
      const set = await this.redis.set(
        `${this.prefix}:nonce:${clientId.length}:${clientId}:${nonce}`,
        '1',
        'PX',
        ttl,
        'NX',
      );
      return set === 'OK';
    } catch (error) {
      throw new StoreUnavailableError(error);
    }
  }
}

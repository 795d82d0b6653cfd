import { hash } from 'node:crypto';

/** 64 bits identifying a (client, nonce) pair, as two unsigned 32-bit halves. */
export interface NonceKey {
  hi: number;
  lo: number;
}

/**
 * The key of (client, nonce): the first 8 bytes of sha256 over them, length-prefixed so no two
 * pairs collide as text. A collision could only refuse a fresh nonce (as a replay), never
 * accept a replay; with a million live nonces the odds for one call are about 1 in 2^44.
 */
export function nonceKey(clientId: string, nonce: string): NonceKey {
  // (As a binary (latin1) string, one character a byte: a Buffer would be a fresh native allocation.)
  const digest = hash('sha256', `${clientId.length}:${clientId}:${nonce}`, 'binary');
  return { hi: word(digest, 0), lo: word(digest, 4) };
}

/** An expiry in whole seconds, rounded up (and held to 32 bits: the year 2106). */
export function expirySeconds(expiresAtMs: number): number {
  return Math.min(Math.max(Math.ceil(expiresAtMs / 1000), 0), 0xffff_ffff);
}

/** The big-endian 32-bit word at `at` of a latin1 byte string. */
function word(bytes: string, at: number): number {
  return (
    ((bytes.charCodeAt(at) << 24) |
      (bytes.charCodeAt(at + 1) << 16) |
      (bytes.charCodeAt(at + 2) << 8) |
      bytes.charCodeAt(at + 3)) >>>
    0
  );
}

const SLOT = 3; // hi, lo, expiry (whole seconds; 0 = empty, 1 = released)
const EMPTY = 0;
const RELEASED = 1;
const MIN_CAPACITY = 1 << 12;
const MAX_LOAD = 0.6;

/**
 * The nonces in the freshness window, in memory: an open-addressing hash table over one typed
 * array (12 bytes a slot), so a million live nonces cost about 25 MB and no garbage. Check 6
 * asks it on every call; a store keeps it in step with its durable log.
 */
export class NonceIndex {
  private slots = new Uint32Array(MIN_CAPACITY * SLOT);
  private capacity = MIN_CAPACITY;
  /** Slots in use, live or expired (expired ones go at the next `prune`). */
  private used = 0;

  get size(): number {
    return this.used;
  }

  /**
   * Records the key until `expiresAtMs` (rounded up to a second); false when it is already
   * recorded. An entry past its expiry still counts until `prune` drops it (check 5 refuses
   * requests that old anyway).
   */
  claim(key: NonceKey, expiresAtMs: number): boolean {
    const expires = Math.max(expirySeconds(expiresAtMs), RELEASED + 1);
    const slots = this.slots;
    const mask = this.capacity - 1;
    for (let i = (key.lo ^ key.hi) & mask; ; i = (i + 1) & mask) {
      const at = i * SLOT;
      const slotExpires = slots[at + 2]!;
      if (slotExpires === EMPTY) {
        slots[at] = key.hi;
        slots[at + 1] = key.lo;
        slots[at + 2] = expires;
        if (++this.used > this.capacity * MAX_LOAD) this.resize(this.capacity * 2, RELEASED + 1);
        return true;
      }
      if (slots[at] === key.hi && slots[at + 1] === key.lo) {
        if (slotExpires !== RELEASED) return false;
        slots[at + 2] = expires;
        return true;
      }
    }
  }

  /** Forgets a key claimed by mistake (its durable write failed), so a retry may use it. */
  release(key: NonceKey): void {
    const slots = this.slots;
    const mask = this.capacity - 1;
    for (let i = (key.lo ^ key.hi) & mask; ; i = (i + 1) & mask) {
      const at = i * SLOT;
      if (slots[at + 2] === EMPTY) return;
      if (slots[at] === key.hi && slots[at + 1] === key.lo) {
        // Stays in the probe chain (other keys may lie beyond it) until the next prune.
        slots[at + 2] = RELEASED;
        return;
      }
    }
  }

  /** Drops entries that expired before `nowMs`, shrinking the table when it is mostly empty. */
  prune(nowMs: number): number {
    const now = Math.floor(nowMs / 1000);
    let live = 0;
    for (let at = 2; at < this.slots.length; at += SLOT) {
      const expires = this.slots[at]!;
      if (expires > RELEASED && expires >= now) live++;
    }
    const dropped = this.used - live;
    let capacity = this.capacity;
    while (capacity > MIN_CAPACITY && live < capacity * (MAX_LOAD / 4)) capacity /= 2;
    if (dropped > 0 || capacity !== this.capacity) this.resize(capacity, now);
    return dropped;
  }

  /** Rehashes the entries that expire at or after `now` (seconds) into `capacity` slots. */
  private resize(capacity: number, now: number): void {
    const old = this.slots;
    const slots = new Uint32Array(capacity * SLOT);
    const mask = capacity - 1;
    let used = 0;
    for (let from = 0; from < old.length; from += SLOT) {
      const expires = old[from + 2]!;
      if (expires === EMPTY || expires < now) continue;
      const hi = old[from]!;
      const lo = old[from + 1]!;
      let i = (lo ^ hi) & mask;
      while (slots[i * SLOT + 2] !== 0) i = (i + 1) & mask;
      slots[i * SLOT] = hi;
      slots[i * SLOT + 1] = lo;
      slots[i * SLOT + 2] = expires;
      used++;
    }
    this.slots = slots;
    this.capacity = capacity;
    this.used = used;
  }
}

import { hash } from 'node:crypto';

/** 64 bits identifying a (client, nonce) pair, as two unsigned 32-bit halves. */
export interface NonceKey {
  hi: number;
  lo: number;
}

/**
 * The key of (client, nonce): the first 8 bytes of sha256 over them, length-prefixed so no two
 * pairs collide as text. A collision could only refuse a fresh nonce (as a replay), never
 * accept a replay.
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

// A slot is two 32-bit words: the key's high half, then the top 16 bits of its low half and a
// 16-bit tag: EMPTY, RELEASED, or FIRST_EXPIRY + (expiry − base) in seconds.
const EMPTY = 0;
const RELEASED = 1;
const FIRST_EXPIRY = 2;
const MAX_OFFSET = 0xffff - FIRST_EXPIRY;
const MIN_CAPACITY = 4096;
const MAX_LOAD = 0.8;
const GROWTH = 1.25;

/**
 * The nonces in the freshness window, in memory: an open-addressing hash table (linear probing)
 * over one typed array, 8 bytes a slot, so a million live nonces cost about 11 MB and no garbage.
 * Check 6 asks it on every call; a store keeps it in step with its durable log.
 *
 * It keeps 48 of the key's 64 bits: with a million live nonces, a fresh one is taken for a replay
 * about once in 280 million calls (the caller signs a new call). Expiries are kept to the second,
 * rounded up, as offsets from a base that moves up at every prune; the rare expiry too far ahead
 * for 16 bits (a freshness window of many hours) waits in a map instead.
 */
export class NonceIndex {
  private slots = new Uint32Array(MIN_CAPACITY * 2);
  private capacity = MIN_CAPACITY;
  /** Slots in use, live or expired (expired ones go at the next `prune`). */
  private used = 0;
  /** Seconds; an expiry is stored as its offset from this. Set by the first claim. */
  private base: number | undefined;
  /** Keys whose expiry is beyond what a slot can hold, by "hi:lo16". */
  private readonly far = new Map<string, number>();

  get size(): number {
    return this.used + this.far.size;
  }

  /**
   * Records the key until `expiresAtMs`; false when it is already recorded. An entry past its
   * expiry still counts until `prune` drops it (check 5 refuses requests that old anyway).
   */
  claim(key: NonceKey, expiresAtMs: number): boolean {
    const expires = expirySeconds(expiresAtMs);
    this.base ??= Math.max(expires - 1, 0);
    const lo16 = key.lo >>> 16;
    const slots = this.slots;
    const capacity = this.capacity;
    for (let i = this.home(key.hi, lo16); ; i = i + 1 === capacity ? 0 : i + 1) {
      const tagged = slots[i * 2 + 1]!;
      const tag = tagged & 0xffff;
      const mine = tag !== EMPTY && slots[i * 2] === key.hi && tagged >>> 16 === lo16;
      if (mine && tag !== RELEASED) return false;
      if (!mine && tag !== EMPTY) continue;
      // A free slot for this key (empty, or its own released one): unless it waits in the map.
      if (this.far.size > 0 && this.far.has(farKey(key.hi, lo16))) return false;
      if (expires - this.base > MAX_OFFSET) {
        this.far.set(farKey(key.hi, lo16), expires);
        return true;
      }
      this.put(i, key.hi, lo16, expires);
      if (!mine && ++this.used > capacity * MAX_LOAD) {
        this.resize(Math.ceil(capacity * GROWTH), 0);
      }
      return true;
    }
  }

  /** Forgets a key claimed by mistake (its durable write failed), so a retry may use it. */
  release(key: NonceKey): void {
    const lo16 = key.lo >>> 16;
    this.far.delete(farKey(key.hi, lo16));
    const slots = this.slots;
    for (let i = this.home(key.hi, lo16); ; i = i + 1 === this.capacity ? 0 : i + 1) {
      const tagged = slots[i * 2 + 1]!;
      if ((tagged & 0xffff) === EMPTY) return;
      if (slots[i * 2] === key.hi && tagged >>> 16 === lo16) {
        // Stays in the probe chain (other keys may lie beyond it) until the next prune.
        slots[i * 2 + 1] = (lo16 << 16) | RELEASED;
        return;
      }
    }
  }

  /** Drops entries that expired before `nowMs`, and sizes the table to what is left. */
  prune(nowMs: number): number {
    const now = Math.floor(nowMs / 1000);
    let dropped = 0;
    for (const [key, expires] of this.far) {
      if (expires < now) {
        this.far.delete(key);
        dropped++;
      }
    }
    let live = 0;
    for (let i = 0; i < this.capacity; i++) {
      const expires = this.expiryAt(i);
      if (expires !== undefined && expires >= now) live++;
    }
    dropped += this.used - live;
    const base = this.base ?? now;
    if (dropped === 0 && this.far.size === 0 && now - base < MAX_OFFSET / 2) return 0;
    // Rebuilt at half the largest load, with the base moved up to now (so what was too far
    // ahead may fit in a slot again).
    let capacity = MIN_CAPACITY;
    while (live > capacity * MAX_LOAD * 0.5) capacity = Math.ceil(capacity * GROWTH);
    this.resize(capacity, now);
    return dropped;
  }

  /** Where a key's probe chain starts: its high bits, scaled to the capacity. */
  private home(hi: number, lo16: number): number {
    return Math.floor(((hi ^ (lo16 << 16)) >>> 0) * (this.capacity / 4294967296));
  }

  private expiryAt(i: number): number | undefined {
    const tag = this.slots[i * 2 + 1]! & 0xffff;
    return tag < FIRST_EXPIRY ? undefined : this.base! + (tag - FIRST_EXPIRY);
  }

  /** Fills slot `i` with a key whose expiry fits (see `claim`). */
  private put(i: number, hi: number, lo16: number, expires: number): void {
    this.slots[i * 2] = hi;
    this.slots[i * 2 + 1] = (lo16 << 16) | (FIRST_EXPIRY + Math.max(expires - this.base!, 0));
  }

  /**
   * Rehashes the entries that expire at or after `now` (seconds) into `capacity` slots, with
   * the base moved up to `now` when that is later.
   */
  private resize(capacity: number, now: number): void {
    const old = this.slots;
    const oldCapacity = this.capacity;
    const oldBase = this.base ?? 0;
    this.slots = new Uint32Array(capacity * 2);
    this.capacity = capacity;
    this.used = 0;
    this.base = Math.max(oldBase, now);
    for (let from = 0; from < oldCapacity; from++) {
      const tag = old[from * 2 + 1]! & 0xffff;
      if (tag < FIRST_EXPIRY) continue;
      const expires = oldBase + (tag - FIRST_EXPIRY);
      if (expires < now) continue;
      this.insert(old[from * 2]!, old[from * 2 + 1]! >>> 16, expires);
    }
    // What waited in the map may fit now.
    for (const [key, expires] of this.far) {
      if (expires - this.base > MAX_OFFSET) continue;
      this.far.delete(key);
      const [hi, lo16] = key.split(':').map(Number) as [number, number];
      this.insert(hi, lo16, expires);
    }
  }

  /** Puts a key known to be absent into the first empty slot of its probe chain. */
  private insert(hi: number, lo16: number, expires: number): void {
    let i = this.home(hi, lo16);
    while ((this.slots[i * 2 + 1]! & 0xffff) !== EMPTY) i = i + 1 === this.capacity ? 0 : i + 1;
    this.put(i, hi, lo16, expires);
    this.used++;
  }
}

function farKey(hi: number, lo16: number): string {
  return `${hi}:${lo16}`;
}

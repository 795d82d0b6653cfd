import canonicalizeJcs from 'canonicalize';

/** Deepest nesting of arrays and objects accepted anywhere in an envelope. */
export const MAX_DEPTH = 64;
/** Most keys in one object, items in one array, and UTF-16 units in one string or key. */
export const MAX_KEYS = 1_024;
export const MAX_ITEMS = 100_000;
export const MAX_STRING_LENGTH = 262_144;
/**
 * Most JSON values in one request body: the body itself and every item and member value in it,
 * at any depth. A body costs its parse, I-JSON check and canonicalization, all before its
 * signature can be checked, in proportion to its values more than to its bytes (100 000 empty
 * objects fit in 300 KB): so a server counts them in the text (`moreValuesThan`) before anything
 * else. batch_sum's largest call (10 000 numbers) holds about 10 010.
 */
export const MAX_VALUES = 20_000;

export class NotCanonicalizableError extends Error {
  constructor(
    readonly reason: 'TOO_DEEP' | 'TOO_LARGE' | 'NON_FINITE_NUMBER' | 'LONE_SURROGATE' | 'NOT_JSON',
  ) {
    super(
      {
        TOO_DEEP: `nesting deeper than ${MAX_DEPTH} levels`,
        TOO_LARGE: `more than ${MAX_KEYS} keys in an object, ${MAX_ITEMS} items in an array or ${MAX_STRING_LENGTH} characters in a string`,
        NON_FINITE_NUMBER: 'non-finite numbers cannot be canonicalized',
        LONE_SURROGATE: 'strings with lone surrogates cannot be canonicalized',
        NOT_JSON: 'value is not plain JSON',
      }[reason],
    );
    this.name = 'NotCanonicalizableError';
  }
}

/**
 * Walks a JSON value without recursion (so hostile nesting cannot overflow the stack) and throws
 * unless RFC 8785 can canonicalize it (finite numbers, well-formed strings) within the limits
 * above (depth within `maxDepth`). Returns whether every object's keys already come in RFC 8785
 * order (see `canonicalJson`).
 */
export function assertCanonicalizable(value: unknown, maxDepth = MAX_DEPTH): boolean {
  if (typeof value !== 'object' || value === null) {
    assertScalar(value);
    return true;
  }
  let keysInOrder = true;
  // Containers still to walk, and their depths. Scalars are checked where they are found: a
  // value costs no allocation unless it is an object or an array.
  const containers: object[] = [value];
  const depths: number[] = [0];
  while (containers.length > 0) {
    const v = containers.pop()!;
    const depth = depths.pop()!;
    if (depth >= maxDepth) throw new NotCanonicalizableError('TOO_DEEP');
    if (Array.isArray(v)) {
      if (v.length > MAX_ITEMS) throw new NotCanonicalizableError('TOO_LARGE');
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (typeof item === 'object' && item !== null) {
          containers.push(item);
          depths.push(depth + 1);
        } else assertScalar(item);
      }
      continue;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) throw new NotCanonicalizableError('NOT_JSON');
    const keys = Object.keys(v);
    if (keys.length > MAX_KEYS) throw new NotCanonicalizableError('TOO_LARGE');
    let previous: string | undefined;
    for (const key of keys) {
      assertString(key);
      // `<` on strings compares UTF-16 code units, as RFC 8785 sorts.
      if (previous !== undefined && !(previous < key)) keysInOrder = false;
      previous = key;
      const item = (v as Record<string, unknown>)[key];
      if (typeof item === 'object' && item !== null) {
        containers.push(item);
        depths.push(depth + 1);
      } else assertScalar(item);
    }
  }
  return keysInOrder;
}

/** Throws unless `value` is a JSON scalar that RFC 8785 can write (null, a boolean, a finite
 * number, a well-formed string within MAX_STRING_LENGTH). */
function assertScalar(value: unknown): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new NotCanonicalizableError('NON_FINITE_NUMBER');
  } else if (typeof value === 'string') {
    assertString(value);
  } else if (value !== null && typeof value !== 'boolean') {
    throw new NotCanonicalizableError('NOT_JSON');
  }
}

function assertString(value: string): void {
  if (value.length > MAX_STRING_LENGTH) throw new NotCanonicalizableError('TOO_LARGE');
  if (!value.isWellFormed()) throw new NotCanonicalizableError('LONE_SURROGATE');
}

/**
 * Whether the JSON text holds more than `max` values (the text itself, each array item and each
 * object member value, as a parse would make them), found in one pass without parsing: so a body
 * with too many is refused before it costs a parse. Linear for any text; for text that is not
 * JSON the answer means nothing (JSON.parse refuses it).
 */
export function moreValuesThan(text: string, max = MAX_VALUES): boolean {
  let values = 1;
  let opened = false; // just past a `[` or `{`: a first item follows, unless it is empty
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20) continue; // whitespace
    if (opened) {
      opened = false;
      if (c !== 0x5d && c !== 0x7d) values++; // not `]` or `}`
    }
    if (c === 0x2c) {
      values++; // `,`: one more item or member
      if (values > max) return true;
    } else if (c === 0x5b || c === 0x7b) {
      opened = true; // `[` or `{`
    } else if (c === 0x22) {
      i = closingQuote(text, i); // a string (its commas and brackets are text)
      if (i === -1) return false;
    }
  }
  return values > max;
}

/** The index of the quote that closes the string opening at `start`, or -1 if none does. */
function closingQuote(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  while (end !== -1) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
  return -1;
}

/** RFC 8785 canonical JSON text of a value that `assertCanonicalizable` accepts. */
export function canonicalize(value: unknown): string {
  const text = canonicalizeJcs(value);
  if (text === undefined) throw new NotCanonicalizableError('NOT_JSON');
  return text;
}

/**
 * RFC 8785 canonical JSON text of any value, after the checks of `assertCanonicalizable`. RFC
 * 8785 writes strings and numbers exactly as JSON.stringify does and sorts object members; so
 * when every object's keys already come in that order (as JSON.stringify will emit them), the
 * engine's JSON.stringify gives the canonical text, several times faster than the
 * `canonicalize` library, which does the rest. (`envelope-signing.test.ts` checks the two
 * against each other.)
 */
export function canonicalJson(value: unknown, maxDepth = MAX_DEPTH): string {
  return assertCanonicalizable(value, maxDepth) ? JSON.stringify(value) : canonicalize(value);
}

/** Printable ASCII but `"` and `\`: written as it is, between quotes. */
const PLAIN = /^[ !#-[\]-~]*$/;

/** A string as RFC 8785 writes it: JSON.stringify's form, once it is well formed. */
export function jcsString(value: string): string {
  if (PLAIN.test(value)) return `"${value}"`;
  if (!value.isWellFormed()) throw new NotCanonicalizableError('LONE_SURROGATE');
  return JSON.stringify(value);
}

/** A finite number as RFC 8785 writes it. */
export function jcsNumber(value: number): string {
  if (!Number.isFinite(value)) throw new NotCanonicalizableError('NON_FINITE_NUMBER');
  // A finite number's JSON form is its String form (RFC 8785 uses the same algorithm).
  return String(value);
}

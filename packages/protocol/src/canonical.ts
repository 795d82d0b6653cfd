import canonicalizeJcs from 'canonicalize';

/** Deepest nesting of arrays and objects accepted anywhere in an envelope. */
export const MAX_DEPTH = 64;
/** Most keys in one object, items in one array, and UTF-16 units in one string or key. */
export const MAX_KEYS = 1_024;
export const MAX_ITEMS = 100_000;
export const MAX_STRING_LENGTH = 262_144;

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
  let keysInOrder = true;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    switch (typeof v) {
      case 'string':
        if (v.length > MAX_STRING_LENGTH) throw new NotCanonicalizableError('TOO_LARGE');
        if (!v.isWellFormed()) throw new NotCanonicalizableError('LONE_SURROGATE');
        continue;
      case 'number':
        if (!Number.isFinite(v)) throw new NotCanonicalizableError('NON_FINITE_NUMBER');
        continue;
      case 'boolean':
        continue;
      case 'object': {
        if (v === null) continue;
        if (depth >= maxDepth) throw new NotCanonicalizableError('TOO_DEEP');
        if (Array.isArray(v)) {
          if (v.length > MAX_ITEMS) throw new NotCanonicalizableError('TOO_LARGE');
          for (const item of v) stack.push([item, depth + 1]);
        } else {
          const proto = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) {
            throw new NotCanonicalizableError('NOT_JSON');
          }
          const keys = Object.keys(v);
          if (keys.length > MAX_KEYS) throw new NotCanonicalizableError('TOO_LARGE');
          let previous: string | undefined;
          for (const key of keys) {
            if (key.length > MAX_STRING_LENGTH) throw new NotCanonicalizableError('TOO_LARGE');
            if (!key.isWellFormed()) throw new NotCanonicalizableError('LONE_SURROGATE');
            // `<` on strings compares UTF-16 code units, as RFC 8785 sorts.
            if (previous !== undefined && !(previous < key)) keysInOrder = false;
            previous = key;
            stack.push([(v as Record<string, unknown>)[key], depth + 1]);
          }
        }
        continue;
      }
      default:
        throw new NotCanonicalizableError('NOT_JSON');
    }
  }
  return keysInOrder;
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

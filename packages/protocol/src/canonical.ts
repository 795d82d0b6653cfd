import canonicalizeJcs from 'canonicalize';

/** Deepest nesting of arrays and objects accepted anywhere in an envelope. */
export const MAX_DEPTH = 64;

export class NotCanonicalizableError extends Error {
  constructor(readonly reason: 'TOO_DEEP' | 'NON_FINITE_NUMBER' | 'LONE_SURROGATE' | 'NOT_JSON') {
    super(
      {
        TOO_DEEP: `nesting deeper than ${MAX_DEPTH} levels`,
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
 * unless RFC 8785 can canonicalize it: depth within `maxDepth`, finite numbers, well-formed strings.
 */
export function assertCanonicalizable(value: unknown, maxDepth = MAX_DEPTH): void {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    switch (typeof v) {
      case 'string':
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
          for (const item of v) stack.push([item, depth + 1]);
        } else {
          const proto = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) {
            throw new NotCanonicalizableError('NOT_JSON');
          }
          for (const key of Object.keys(v)) {
            if (!key.isWellFormed()) throw new NotCanonicalizableError('LONE_SURROGATE');
            stack.push([(v as Record<string, unknown>)[key], depth + 1]);
          }
        }
        continue;
      }
      default:
        throw new NotCanonicalizableError('NOT_JSON');
    }
  }
}

/** RFC 8785 canonical JSON text of a value that `assertCanonicalizable` accepts. */
export function canonicalize(value: unknown): string {
  const text = canonicalizeJcs(value);
  if (text === undefined) throw new NotCanonicalizableError('NOT_JSON');
  return text;
}

import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertCanonicalizable,
  canonicalize,
  MAX_DEPTH,
  MAX_VALUES,
  moreValuesThan,
  NotCanonicalizableError,
} from './canonical.ts';
import { sharedFile } from './shared-files.ts';

/** shared/vectors/jcs (RFC 8785's own vectors). */
const JCS_DIR = sharedFile('vectors/jcs/');
const vectorNames = readdirSync(new URL('input/', JCS_DIR))
  .filter((name) => name.endsWith('.json'))
  .sort();

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(NotCanonicalizableError);
    return (error as NotCanonicalizableError).reason;
  }
  return undefined;
}

/** `depth` arrays nested inside each other, innermost empty: `[[[…]]]`. */
function nestedArrays(depth: number): unknown {
  return JSON.parse('['.repeat(depth) + ']'.repeat(depth));
}

describe('canonicalize: RFC 8785 vectors (shared/vectors/jcs)', () => {
  it('finds the published vectors, each with an expected output', () => {
    expect(vectorNames).toEqual([
      'arrays.json',
      'french.json',
      'structures.json',
      'unicode.json',
      'values.json',
      'weird.json',
    ]);
    const outputs = readdirSync(new URL('output/', JCS_DIR)).sort();
    expect(outputs).toEqual(vectorNames);
  });

  it.each(vectorNames)('%s canonicalizes to the exact output bytes', (name) => {
    const input: unknown = JSON.parse(readFileSync(new URL(`input/${name}`, JCS_DIR), 'utf8'));
    const expected = readFileSync(new URL(`output/${name}`, JCS_DIR));
    // The vectors carry no trailing newline: the comparison is of the raw file bytes.
    expect(expected.at(-1)).not.toBe(0x0a);
    assertCanonicalizable(input);
    const actual = Buffer.from(canonicalize(input), 'utf8');
    expect(actual.toString('utf8')).toBe(expected.toString('utf8'));
    expect(actual.equals(expected)).toBe(true);
  });
});

describe('canonicalize: properties', () => {
  it('sorts keys by UTF-16 code units, not by code points or locale', () => {
    // U+1F602 is D83D DE02 in UTF-16, which sorts before U+FB33; by code point it is after.
    expect(canonicalize({ '\ufb33': 1, '\u{1f602}': 2, é: 3, z: 4, Z: 5 })).toBe(
      '{"Z":5,"z":4,"é":3,"\u{1f602}":2,"\ufb33":1}',
    );
  });

  it('writes numbers in ECMAScript form and non-ASCII raw', () => {
    expect(canonicalize([1.0, 1e21, 1e-7, -0, 0.1, 1e16, 123.456])).toBe(
      '[1,1e+21,1e-7,0,0.1,10000000000000000,123.456]',
    );
    expect(canonicalize({ s: 'café €' })).toBe('{"s":"café €"}');
    expect(canonicalize('\u0000\u001f\u007f')).toBe('"\\u0000\\u001f\u007f"');
  });

  it('is independent of the insertion order of keys', () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } };
    const b = { a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 };
    expect(canonicalize(a)).toBe(canonicalize(b));
    expect(canonicalize(a)).toBe('{"a":{"c":null,"d":[1,{"x":1,"y":2}]},"b":1}');
  });

  it('refuses what it cannot canonicalize', () => {
    expect(() => canonicalize(Number.NaN)).toThrow();
    expect(() => canonicalize(Number.POSITIVE_INFINITY)).toThrow();
    expect(() => canonicalize(JSON.parse('"\\ud800"'))).toThrow();
    expect(() => canonicalize(undefined)).toThrow(NotCanonicalizableError);
  });
});

describe('assertCanonicalizable', () => {
  it('accepts plain JSON, including null-prototype objects', () => {
    expect(() =>
      assertCanonicalizable({
        a: [1, -2.5, 'x', true, false, null, { b: {} }],
        '\u{1f602}': 'ok\u{1f602}',
      }),
    ).not.toThrow();
    const bare = Object.create(null) as Record<string, unknown>;
    bare.k = 1;
    expect(() => assertCanonicalizable(bare)).not.toThrow();
  });

  it('rejects NaN and ±Infinity anywhere (NON_FINITE_NUMBER)', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(reasonOf(() => assertCanonicalizable(bad))).toBe('NON_FINITE_NUMBER');
      expect(reasonOf(() => assertCanonicalizable({ a: [1, { b: bad }] }))).toBe(
        'NON_FINITE_NUMBER',
      );
    }
  });

  it('rejects lone surrogates in values and in keys (LONE_SURROGATE)', () => {
    const high: string = JSON.parse('"\\ud800"');
    const low: string = JSON.parse('"\\udc00"');
    expect(high).toHaveLength(1);
    for (const lone of [high, low, `a${high}b`, `${low}${high}`, `x${high}`]) {
      expect(reasonOf(() => assertCanonicalizable(lone))).toBe('LONE_SURROGATE');
      expect(reasonOf(() => assertCanonicalizable({ a: [lone] }))).toBe('LONE_SURROGATE');
      expect(reasonOf(() => assertCanonicalizable({ [lone]: 1 }))).toBe('LONE_SURROGATE');
      expect(reasonOf(() => assertCanonicalizable({ a: { [lone]: null } }))).toBe('LONE_SURROGATE');
    }
    const keyed: unknown = JSON.parse('{"\\ud800":1}');
    expect(reasonOf(() => assertCanonicalizable(keyed))).toBe('LONE_SURROGATE');
    // A proper pair is fine.
    expect(() =>
      assertCanonicalizable(JSON.parse('{"\\ud83d\\ude02":"\\ud83d\\ude02"}')),
    ).not.toThrow();
  });

  it(`accepts exactly ${MAX_DEPTH} levels of nesting and refuses one more (TOO_DEEP)`, () => {
    expect(MAX_DEPTH).toBe(64);
    expect(() => assertCanonicalizable(nestedArrays(64))).not.toThrow();
    expect(reasonOf(() => assertCanonicalizable(nestedArrays(65)))).toBe('TOO_DEEP');

    let objects: unknown = 1;
    for (let i = 0; i < 64; i++) objects = { k: objects };
    expect(() => assertCanonicalizable(objects)).not.toThrow();
    expect(reasonOf(() => assertCanonicalizable({ k: objects }))).toBe('TOO_DEEP');

    // A custom limit.
    expect(() => assertCanonicalizable(nestedArrays(3), 3)).not.toThrow();
    expect(reasonOf(() => assertCanonicalizable(nestedArrays(4), 3))).toBe('TOO_DEEP');
  });

  it('refuses hostile nesting (100 000 levels) with TOO_DEEP, without a stack overflow', () => {
    const n = 100_000;
    const deep = nestedArrays(n);
    expect(reasonOf(() => assertCanonicalizable(deep))).toBe('TOO_DEEP');
    let deepObject: unknown = null;
    for (let i = 0; i < n; i++) deepObject = { a: deepObject };
    expect(reasonOf(() => assertCanonicalizable(deepObject))).toBe('TOO_DEEP');
  });

  it('refuses values that are not plain JSON (NOT_JSON)', () => {
    class Plainish {
      a = 1;
    }
    const bad: unknown[] = [
      new Date(0),
      new Map([['a', 1]]),
      new Set([1]),
      new Plainish(),
      /re/,
      undefined,
      () => 1,
      Symbol('s'),
      10n,
      // biome-ignore lint/suspicious/noSparseArray: a hole is not JSON
      [1, , 3],
    ];
    for (const value of bad) {
      expect(reasonOf(() => assertCanonicalizable(value))).toBe('NOT_JSON');
      expect(reasonOf(() => assertCanonicalizable({ nested: [value] }))).toBe('NOT_JSON');
    }
    expect(reasonOf(() => assertCanonicalizable({ a: undefined }))).toBe('NOT_JSON');
  });
});

describe('moreValuesThan (MAX_VALUES, counted in the text)', () => {
  /** The values of a parsed value: itself, each item and each member value, at any depth. */
  function valuesOf(value: unknown): number {
    if (typeof value !== 'object' || value === null) return 1;
    return 1 + Object.values(value).reduce<number>((sum, item) => sum + valuesOf(item), 0);
  }

  it('counts what a parse makes, in any JSON text, whatever its strings or whitespace hold', () => {
    const punctuation = fc.string({
      unit: fc.constantFrom('"', '\\', ',', '[', ']', '{', '}', ':', 'a', ' '),
    });
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom(null, true, false, 0, -1.5e-7),
        punctuation,
        fc.array(tie('value'), { maxLength: 5 }),
        fc.dictionary(punctuation, tie('value'), { maxKeys: 5 }),
      ),
    })).value;
    fc.assert(
      fc.property(json, fc.constantFrom(undefined, 1, '\t', ' \n '), (value, space) => {
        const text = JSON.stringify(value, null, space);
        const count = valuesOf(JSON.parse(text));
        expect(moreValuesThan(text, count)).toBe(false);
        expect(moreValuesThan(text, count - 1)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it(`refuses 100 000 empty objects (past MAX_VALUES, ${MAX_VALUES}) and takes MAX_VALUES`, () => {
    const objects = (n: number) => `[${Array(n).fill('{}').join(',')}]`;
    expect(moreValuesThan(objects(100_000))).toBe(true);
    expect(moreValuesThan(objects(MAX_VALUES - 1))).toBe(false);
    expect(moreValuesThan(objects(MAX_VALUES))).toBe(true);
    expect(moreValuesThan(`[${'[],'.repeat(MAX_VALUES - 2)}[]]`)).toBe(false);
  });

  it('ends on any text, in one pass (an unclosed string, stray backslashes)', () => {
    for (const text of ['"', '["a', '["\\"', '\\"', '', ',,,', '[[[[', '"\\\\"']) {
      expect(typeof moreValuesThan(text, 1)).toBe('boolean');
    }
    expect(moreValuesThan(',,,', 3)).toBe(true);
  });
});

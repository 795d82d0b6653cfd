import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { duplicateMemberName } from './i-json.ts';

/**
 * The reference: a plain recursive-descent JSON parser that says which name it met twice first
 * (names compared after JSON.parse decodes them). Slow and obvious, for comparison only.
 */
function referenceDuplicate(text: string): string | undefined {
  let i = 0;
  let found: string | undefined;
  const ws = () => {
    while (/\s/.test(text[i] ?? '')) i++;
  };
  const string = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const names = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        const name = string();
        if (names.has(name)) found ??= name;
        names.add(name);
        ws();
        i++; // :
        value();
        ws();
        if (text[i++] === '}') return;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i++] === ']') return;
      }
    }
    if (c === '"') {
      string();
      return;
    }
    while (i < text.length && !/[\s,\]}]/.test(text[i]!)) i++;
  };
  value();
  return found;
}

/** A name written as JSON, sometimes with needless escapes (`\u0061` for `a`). */
const writtenName = fc
  .tuple(fc.constantFrom('a', 'b', 'args', 'é', '"', '\\', 'a"b', '{', '', '\u2028'), fc.boolean())
  .map(([name, escaped]) =>
    escaped
      ? `"${[...name].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}"`
      : JSON.stringify(name),
  );

const space = fc.constantFrom('', ' ', '\n', '\t ');

/** JSON text whose objects draw names from a small set, so that some repeat. */
const jsonText: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('1', '-2.5e3', 'true', 'null', '"x,{}[]\\"y"', '"\\\\"'),
    fc
      .array(fc.tuple(space, writtenName, space, tie('value')), { maxLength: 6 })
      .map((members) => `{${members.map(([a, n, b, v]) => `${a}${n}${b}:${v}`).join(',')}}`),
    fc.array(tie('value'), { maxLength: 4 }).map((items) => `[${items.join(' , ')}]`),
  ),
})).value;

describe('duplicateMemberName', () => {
  it('agrees with a reference parser on random JSON with repeated names', () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        JSON.parse(text); // the generator writes valid JSON only
        expect(duplicateMemberName(text)).toBe(referenceDuplicate(text));
      }),
      { numRuns: 5_000 },
    );
  });

  it('finds a repeated name at the top level, in nested objects and escaped', () => {
    expect(duplicateMemberName('{"args":{},"v":1,"args":{"x":1}}')).toBe('args');
    expect(duplicateMemberName('{"args":{"numbers":[1],"numbers":[2]}}')).toBe('numbers');
    expect(duplicateMemberName('[{"a":1},{"a":1,"\\u0061":2}]')).toBe('a');
    expect(duplicateMemberName('{"a":{"b":1},"b":{"a":2}}')).toBeUndefined();
    expect(duplicateMemberName('{"a\\"":1,"a\\\\":2,"a":3}')).toBeUndefined();
  });

  it('tells names apart in objects too large for a list', () => {
    const names = Array.from({ length: 50_000 }, (_, n) => `"k${n}":${n}`);
    expect(duplicateMemberName(`{${names.join(',')}}`)).toBeUndefined();
    expect(duplicateMemberName(`{${names.join(',')},"k49999":0}`)).toBe('k49999');
  });
});

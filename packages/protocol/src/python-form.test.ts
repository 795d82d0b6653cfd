import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { canonicalize } from './canonical.ts';

/**
 * DESIGN 1.3: for ASCII strings and integers, JCS equals the tutorial's Python form
 * `json.dumps(obj, separators=(",",":"), sort_keys=True)`. These tests prove it against a real
 * python3 when one is installed, and pin down where the two forms differ.
 */

const PYTHON_DUMPS = `
import json, sys
for obj in json.loads(sys.stdin.read()):
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\\n")
`;

const hasPython = spawnSync('python3', ['-c', 'import json'], { encoding: 'utf8' }).status === 0;

/**
 * Python's form of each value: the values travel to python as JSON text (so ints stay ints and
 * a `1.0` written in the text stays a float), one output per line (the form has no raw newline).
 */
function pythonDumps(jsonTexts: readonly string[]): string[] {
  const run = spawnSync('python3', ['-c', PYTHON_DUMPS], {
    input: `[${jsonTexts.join(',')}]`,
    encoding: 'utf8',
    env: { ...process.env, PYTHONIOENCODING: 'utf-8' },
  });
  if (run.status !== 0) throw new Error(`python3 failed: ${run.stderr}`);
  const lines = run.stdout.split('\n');
  expect(lines.pop()).toBe('');
  expect(lines).toHaveLength(jsonTexts.length);
  return lines;
}

function expectSameBytes(actual: string, expected: string): void {
  expect(actual).toBe(expected);
  expect(Buffer.from(actual, 'utf8').equals(Buffer.from(expected, 'utf8'))).toBe(true);
}

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * ASCII characters on which the forms agree: every control character, every printable one
 * (quotes, backslashes and slashes included). DEL (0x7f) is left out: see the differences below.
 */
const ASCII = [
  ...Array.from({ length: 0x7f }, (_, code) => String.fromCharCode(code)),
  '"',
  '\\',
  '/',
  '\n',
  '\t',
  '\u0001',
];

function randomObjects(count: number, seed: number): unknown[] {
  const next = rng(seed);
  const int = (max: number) => Math.floor(next() * max);
  const str = () => Array.from({ length: int(8) }, () => ASCII[int(ASCII.length)]).join('');
  const integer = () => {
    const magnitude = [10, 1000, 2 ** 31, Number.MAX_SAFE_INTEGER][int(4)]!;
    return (next() < 0.5 ? -1 : 1) * int(magnitude);
  };
  const value = (depth: number): unknown => {
    const pick = int(depth >= 4 ? 5 : 7);
    switch (pick) {
      case 0:
        return str();
      case 1:
        return integer();
      case 2:
        return next() < 0.5;
      case 3:
        return null;
      case 4:
        return str();
      case 5:
        return Array.from({ length: int(5) }, () => value(depth + 1));
      default: {
        const obj: Record<string, unknown> = {};
        for (let i = int(6); i > 0; i--) obj[str()] = value(depth + 1);
        return obj;
      }
    }
  };
  return Array.from({ length: count }, () => {
    const obj: Record<string, unknown> = {};
    for (let i = 1 + int(6); i > 0; i--) obj[str()] = value(1);
    return obj;
  });
}

/** Hand-picked ASCII/integer objects, with Python's output written out (checked below). */
const KNOWN: ReadonlyArray<[unknown, string]> = [
  [{}, '{}'],
  [[], '[]'],
  [
    { b: [1, -2, true, false, null], a: 'q"\\\n\t\u0001/', A: {} },
    '{"A":{},"a":"q\\"\\\\\\n\\t\\u0001/","b":[1,-2,true,false,null]}',
  ],
  [
    { nested: { z: [{ y: 0, x: -9007199254740991 }], '': 'empty' }, '10': 1, '9': 2 },
    '{"10":1,"9":2,"nested":{"":"empty","z":[{"x":-9007199254740991,"y":0}]}}',
  ],
  [{ '\u001f': '\b\f\r', ' ': '~' }, '{"\\u001f":"\\b\\f\\r"," ":"~"}'],
];

describe('the Python form (ASCII strings and integers)', () => {
  it.each(KNOWN)('canonicalize(%j) equals the Python form written out', (value, python) => {
    expectSameBytes(canonicalize(value), python);
  });

  it.skipIf(!hasPython)('the written-out forms are what python3 actually prints', () => {
    const python = pythonDumps(KNOWN.map(([value]) => JSON.stringify(value)));
    expect(python).toEqual(KNOWN.map(([, text]) => text));
  });

  it.skipIf(!hasPython)('equals python3 json.dumps byte for byte on 300 generated objects', () => {
    const objects = randomObjects(300, 0x5161e7);
    const python = pythonDumps(objects.map((o) => JSON.stringify(o)));
    for (const [i, obj] of objects.entries()) expectSameBytes(canonicalize(obj), python[i]!);
    // The generator really exercises escapes and nesting, not just flat objects.
    const all = python.join('\n');
    for (const fragment of [
      '\\"',
      '\\\\',
      '\\n',
      '\\t',
      '\\u0001',
      '[{',
      '{"',
      '-',
      'true',
      'null',
    ]) {
      expect(all).toContain(fragment);
    }
  });
});

describe('where the Python form differs from JCS (README must state these)', () => {
  it('the float 1.0: JCS writes 1 (JS has no float/int distinction), Python 1.0', () => {
    expect(canonicalize(JSON.parse('{"n":1.0}'))).toBe('{"n":1}');
  });

  it.skipIf(!hasPython)('python3 writes 1.0 as 1.0', () => {
    expect(pythonDumps(['{"n":1.0}'])).toEqual(['{"n":1.0}']);
  });

  it('large and small numbers use the ECMAScript form', () => {
    expect(canonicalize([1e21, 10 ** 21, 1e16, 1e-7, 1e-5])).toBe(
      '[1e+21,1e+21,10000000000000000,1e-7,0.00001]',
    );
    // Integers beyond 2^53 do not survive a JS number at all.
    expect(canonicalize(JSON.parse('9007199254740993'))).toBe('9007199254740992');
  });

  it.skipIf(!hasPython)('python3 differs on those numbers', () => {
    // The float 1e21 happens to agree (1e+21); the integer 10**21 and the other floats do not.
    const texts = ['1e21', '1000000000000000000000', '1e16', '1e-7', '1e-5', '9007199254740993'];
    expect(pythonDumps(texts)).toEqual([
      '1e+21',
      '1000000000000000000000',
      '1e+16',
      '1e-07',
      '1e-05',
      '9007199254740993',
    ]);
    const jcs = texts.map((t) => canonicalize(JSON.parse(t)));
    expect(jcs).toEqual([
      '1e+21',
      '1e+21',
      '10000000000000000',
      '1e-7',
      '0.00001',
      '9007199254740992',
    ]);
  });

  it('non-ASCII strings: JCS writes raw UTF-8', () => {
    const jcs = canonicalize({ s: 'café \u{1f602}' });
    expect(jcs).toBe('{"s":"café \u{1f602}"}');
    expect(Buffer.from(jcs, 'utf8').toString('hex')).toBe(
      Buffer.from('{"s":"caf\xc3\xa9 \xf0\x9f\x98\x82"}', 'latin1').toString('hex'),
    );
  });

  it.skipIf(!hasPython)('python3 escapes non-ASCII to \\uXXXX by default', () => {
    expect(pythonDumps([JSON.stringify({ s: 'café \u{1f602}' })])).toEqual([
      '{"s":"caf\\u00e9 \\ud83d\\ude02"}',
    ]);
  });

  it('DEL (0x7f, an ASCII character): JCS writes it raw', () => {
    expect(canonicalize('a\u007fb')).toBe('"a\u007fb"');
  });

  it.skipIf(!hasPython)('python3 escapes DEL as \\u007f', () => {
    expect(pythonDumps([JSON.stringify('a\u007fb')])).toEqual(['"a\\u007fb"']);
  });

  it('non-ASCII keys: JCS sorts by UTF-16 code units (U+1F602 before U+FB33)', () => {
    const obj = { '\ufb33': 3, '\u{1f602}': 2, é: 1 };
    expect(canonicalize(obj)).toBe('{"é":1,"\u{1f602}":2,"\ufb33":3}');
  });

  it.skipIf(!hasPython)('python3 sorts them by code point (U+FB33 before U+1F602)', () => {
    expect(pythonDumps([JSON.stringify({ '\ufb33': 3, '\u{1f602}': 2, é: 1 })])).toEqual([
      '{"\\u00e9":1,"\\ufb33":3,"\\ud83d\\ude02":2}',
    ]);
  });
});

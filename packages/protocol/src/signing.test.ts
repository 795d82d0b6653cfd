import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NotCanonicalizableError } from './canonical.ts';
import { sharedFile } from './shared-files.ts';
import { findSigningKey, hmacHex, sign, signaturesEqual, signingInput, verify } from './signing.ts';

interface Vector {
  name: string;
  envelope: Record<string, unknown>;
  canonical: string;
  signature: string;
}

const VECTORS = JSON.parse(readFileSync(sharedFile('vectors/signing/envelopes.json'), 'utf8')) as {
  secret: string;
  requests: Vector[];
  responses: Vector[];
};
const SECRET = VECTORS.secret;
const ALL = [...VECTORS.requests, ...VECTORS.responses];
const OTHER_SECRET = 'another-secret-of-at-least-32-characters!';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** A value of the same kind that canonicalizes differently. */
function changed(value: Json): Json {
  if (value === null) return 0;
  switch (typeof value) {
    case 'boolean':
      return !value;
    case 'number':
      return value === 0 ? 1 : value * 2;
    case 'string':
      return `${value}x`;
    default:
      return Array.isArray(value) ? [...value, null] : { ...value, extra: 1 };
  }
}

interface Tamper {
  what: string;
  apply: (envelope: Record<string, Json>) => void;
}

/** Every single-field change inside `args`: each key renamed, each value (at any depth) changed. */
function argsTampers(node: Json, path: Array<string | number>): Tamper[] {
  if (node === null || typeof node !== 'object') return [];
  const at = (envelope: Record<string, Json>): Json => {
    let cursor: Json = envelope.args as Json;
    for (const step of path) cursor = (cursor as Record<string | number, Json>)[step] as Json;
    return cursor;
  };
  const where = ['args', ...path].join('.');
  const tampers: Tamper[] = [];
  if (Array.isArray(node)) {
    node.forEach((item, index) => {
      tampers.push({
        what: `change ${where}[${index}]`,
        apply: (e) => {
          const arr = at(e) as Json[];
          arr[index] = changed(arr[index]!);
        },
      });
      tampers.push(...argsTampers(item, [...path, index]));
    });
    tampers.push({ what: `remove last of ${where}`, apply: (e) => void (at(e) as Json[]).pop() });
    tampers.push({ what: `append to ${where}`, apply: (e) => void (at(e) as Json[]).push(0) });
    return tampers;
  }
  for (const [key, child] of Object.entries(node)) {
    tampers.push({
      what: `change value ${where}.${key}`,
      apply: (e) => {
        const obj = at(e) as Record<string, Json>;
        obj[key] = changed(obj[key]!);
      },
    });
    tampers.push({
      what: `rename key ${where}.${key}`,
      apply: (e) => {
        const obj = at(e) as Record<string, Json>;
        obj[`${key}_`] = obj[key]!;
        delete obj[key];
      },
    });
    tampers.push({
      what: `remove key ${where}.${key}`,
      apply: (e) => void delete (at(e) as Record<string, Json>)[key],
    });
    tampers.push(...argsTampers(child, [...path, key]));
  }
  tampers.push({
    what: `add a key to ${where}`,
    apply: (e) => {
      (at(e) as Record<string, Json>).added = 'x';
    },
  });
  return tampers;
}

function tampersOf(envelope: Record<string, Json>): Tamper[] {
  const tampers: Tamper[] = [];
  for (const key of Object.keys(envelope)) {
    tampers.push({
      what: `change ${key}`,
      apply: (e) => {
        e[key] = changed(e[key]!);
      },
    });
    tampers.push({ what: `remove ${key}`, apply: (e) => void delete e[key] });
    tampers.push({
      what: `rename ${key}`,
      apply: (e) => {
        e[`${key}_`] = e[key]!;
        delete e[key];
      },
    });
  }
  // Same text, other type: a number sent as a string must not verify.
  tampers.push({
    what: 'ts_ms as a string',
    apply: (e) => {
      e.ts_ms = String(e.ts_ms);
    },
  });
  tampers.push({
    what: 'add a field',
    apply: (e) => {
      e.extra = 'x';
    },
  });
  tampers.push({
    what: 'add a null field',
    apply: (e) => {
      e.extra = null;
    },
  });
  if (!('kid' in envelope)) {
    tampers.push({
      what: 'add kid',
      apply: (e) => {
        e.kid = 'k1';
      },
    });
  }
  tampers.push(...argsTampers(envelope.args as Json, []));
  return tampers;
}

describe('signing vectors (shared/vectors/signing/envelopes.json)', () => {
  it('has request and response vectors', () => {
    expect(VECTORS.requests.length).toBeGreaterThanOrEqual(4);
    expect(VECTORS.responses.length).toBeGreaterThanOrEqual(2);
    expect(SECRET.length).toBeGreaterThanOrEqual(32);
  });

  describe.each(ALL.map((v) => [v.name, v] as const))('%s', (_name, vector) => {
    it('signingInput is the canonical form', () => {
      expect(signingInput(vector.envelope)).toBe(vector.canonical);
      // The signature field is left out of what gets signed.
      expect(signingInput({ ...vector.envelope, signature: vector.signature })).toBe(
        vector.canonical,
      );
    });

    it('sign reproduces the signature, and verify accepts it', () => {
      const signed = sign(vector.envelope, SECRET);
      expect(signed.signature).toBe(vector.signature);
      expect(signed).toEqual({ ...vector.envelope, signature: vector.signature });
      expect(verify(signed, SECRET)).toBe(true);
      expect(verify({ ...vector.envelope, signature: vector.signature }, SECRET)).toBe(true);
      // The key is the UTF-8 bytes of the secret.
      expect(sign(vector.envelope, Buffer.from(SECRET, 'utf8')).signature).toBe(vector.signature);
      expect(hmacHex(SECRET, vector.canonical)).toBe(vector.signature);
    });

    it('sign ignores a previous signature and does not change its input', () => {
      const before = clone(vector.envelope);
      const resigned = sign({ ...vector.envelope, signature: 'f'.repeat(64) }, SECRET);
      expect(resigned.signature).toBe(vector.signature);
      expect(vector.envelope).toEqual(before);
    });

    it('verify refuses another key', () => {
      const signed = { ...vector.envelope, signature: vector.signature };
      expect(verify(signed, OTHER_SECRET)).toBe(false);
      expect(verify(signed, `${SECRET} `)).toBe(false);
      expect(verify(signed, SECRET.slice(0, -1))).toBe(false);
    });

    it('flipping any single hex character of the signature fails verification', () => {
      const sig = vector.signature;
      expect(sig).toMatch(/^[0-9a-f]{64}$/);
      for (let i = 0; i < sig.length; i++) {
        const digit = Number.parseInt(sig[i]!, 16);
        for (const flipped of [(digit ^ 1).toString(16), (digit ^ 8).toString(16)]) {
          const bad = sig.slice(0, i) + flipped + sig.slice(i + 1);
          expect(bad).not.toBe(sig);
          expect(verify({ ...vector.envelope, signature: bad }, SECRET), `position ${i}`).toBe(
            false,
          );
        }
      }
    });
  });
});

describe.each(VECTORS.requests.map((v) => [v.name, v] as const))(
  'tampering with request "%s"',
  (_name, vector) => {
    const signed = { ...vector.envelope, signature: vector.signature } as Record<string, Json>;
    const tampers = tampersOf(vector.envelope as Record<string, Json>);

    it('covers every top-level field and every key and value inside args', () => {
      const topLevel = Object.keys(vector.envelope).length;
      expect(tampers.length).toBeGreaterThanOrEqual(3 * topLevel + 3);
    });

    it.each(tampers.map((t) => [t.what, t] as const))('%s: verify is false', (_what, tamper) => {
      const tampered = clone(signed);
      tamper.apply(tampered);
      // The change is real (it reaches the signed bytes) and the signature no longer matches.
      expect(signingInput(tampered)).not.toBe(vector.canonical);
      expect(tampered.signature).toBe(vector.signature);
      expect(verify(tampered as { signature: string }, SECRET)).toBe(false);
      // The untouched original still verifies.
      expect(verify(signed as { signature: string }, SECRET)).toBe(true);
    });
  },
);

describe('verify and signingInput on input that cannot be canonicalized', () => {
  it('throws NotCanonicalizableError instead of signing or verifying it', () => {
    const base = VECTORS.requests[0]!.envelope;
    const lone: string = JSON.parse('"\\ud800"');
    const bad = [
      { ...base, args: { n: Number.NaN } },
      { ...base, args: { s: lone } },
      { ...base, args: JSON.parse(`{"a":${'['.repeat(100)}${']'.repeat(100)}}`) },
      { ...base, ts_ms: new Date(0) },
    ];
    for (const envelope of bad) {
      expect(() => signingInput(envelope)).toThrow(NotCanonicalizableError);
      expect(() => sign(envelope, SECRET)).toThrow(NotCanonicalizableError);
      expect(() => verify({ ...envelope, signature: '0'.repeat(64) }, SECRET)).toThrow(
        NotCanonicalizableError,
      );
    }
  });
});

describe('signaturesEqual', () => {
  const sig = VECTORS.requests[0]!.signature;

  it('accepts two equal lowercase-hex signatures', () => {
    expect(signaturesEqual(sig, sig)).toBe(true);
    expect(signaturesEqual(sig, `${sig}`.slice(0))).toBe(true);
  });

  it('rejects a different signature', () => {
    expect(signaturesEqual(sig, VECTORS.requests[1]!.signature)).toBe(false);
    expect(signaturesEqual(sig, `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`)).toBe(false);
  });

  it('rejects uppercase hex, on either side, even for the same bytes', () => {
    const upper = sig.toUpperCase();
    expect(upper).not.toBe(sig);
    expect(signaturesEqual(sig, upper)).toBe(false);
    expect(signaturesEqual(upper, sig)).toBe(false);
    expect(signaturesEqual(upper, upper)).toBe(false);
    const oneUpper = sig.replace(/[a-f]/, (c) => c.toUpperCase());
    expect(oneUpper).not.toBe(sig);
    expect(signaturesEqual(sig, oneUpper)).toBe(false);
  });

  it('rejects wrong lengths and non-hex text', () => {
    for (const bad of [
      '',
      sig.slice(0, 63),
      sig.slice(0, 62),
      `${sig}0`,
      `${sig}00`,
      sig + sig,
      `${sig.slice(0, 63)}g`,
      `${sig.slice(0, 63)} `,
      ` ${sig.slice(1)}`,
      `${sig}\n`,
    ]) {
      expect(signaturesEqual(sig, bad), JSON.stringify(bad)).toBe(false);
      expect(signaturesEqual(bad, sig), JSON.stringify(bad)).toBe(false);
    }
    // Equal but malformed values are not "equal signatures" either.
    expect(signaturesEqual(sig.slice(0, 62), sig.slice(0, 62))).toBe(false);
    expect(signaturesEqual('', '')).toBe(false);
  });
});

describe('findSigningKey', () => {
  const vector = VECTORS.requests[3]!;
  const keys = [
    { kid: 'old', secret: 'old-secret-old-secret-old-secret-0001' },
    { kid: 'k1', secret: SECRET },
    { kid: 'new', secret: 'new-secret-new-secret-new-secret-0002' },
  ];

  it('finds the key that signed, wherever it is in the list', () => {
    expect(findSigningKey(vector.canonical, vector.signature, keys)).toBe(keys[1]);
    expect(findSigningKey(vector.canonical, vector.signature, [...keys].reverse())).toBe(keys[1]);
    expect(findSigningKey(vector.canonical, vector.signature, [keys[1]!])).toBe(keys[1]);
    const byNew = sign(vector.envelope, keys[2]!.secret);
    expect(findSigningKey(signingInput(byNew), byNew.signature, keys)).toBe(keys[2]);
    const byOld = sign(vector.envelope, keys[0]!.secret);
    expect(findSigningKey(signingInput(byOld), byOld.signature, keys)).toBe(keys[0]);
  });

  it('accepts Buffer secrets', () => {
    const bufferKeys = keys.map((k) => ({ ...k, secret: Buffer.from(k.secret, 'utf8') }));
    expect(findSigningKey(vector.canonical, vector.signature, bufferKeys)).toBe(bufferKeys[1]);
  });

  it('returns the first match when two keys share a secret', () => {
    const twins = [keys[0]!, { kid: 'a', secret: SECRET }, { kid: 'b', secret: SECRET }];
    expect(findSigningKey(vector.canonical, vector.signature, twins)?.kid).toBe('a');
  });

  it('returns undefined when no key matches', () => {
    const others = [keys[0]!, keys[2]!];
    expect(findSigningKey(vector.canonical, vector.signature, others)).toBeUndefined();
    expect(findSigningKey(vector.canonical, vector.signature, [])).toBeUndefined();
    expect(findSigningKey(`${vector.canonical} `, vector.signature, keys)).toBeUndefined();
    expect(findSigningKey(vector.canonical, vector.signature.toUpperCase(), keys)).toBeUndefined();
    expect(findSigningKey(vector.canonical, VECTORS.requests[0]!.signature, keys)).toBeUndefined();
  });
});

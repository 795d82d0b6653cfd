// fast-check arbitraries for the property-based security suite (security.property.test.ts): valid
// and invalid args per tool, valid calls, poison for check 1 of DESIGN 1.4 (values JSON can carry
// but a canonical envelope cannot), and random and hostile bodies.

import { MAX_ITEMS, MAX_KEYS, MAX_STRING_LENGTH, PROTOCOL_VERSION } from '@signet/protocol';
import fc from 'fast-check';
import { BATCH_SUM_MAX_NUMBERS, tools } from '../tools/contracts.ts';
import {
  ALL_SIGNERS,
  type CallSpec,
  ENVELOPE_FIELDS,
  type EnvelopeField,
  FULL_SIGNERS,
  POST_TOOLS,
  type PostTool,
  put,
  SERVER_ID,
  type Signer,
  unique,
  WINDOW_MS,
} from './property-server.ts';

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** 1-128 UTF-16 units, well formed (full Unicode, no lone surrogates). */
export const idArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 64 });
export const nonceArb = fc.stringMatching(/^[A-Za-z0-9_-]{16,128}$/);
export const finiteArb = fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e12, max: 1e12 });
const jobIdArb = fc.oneof(fc.uuid(), idArb);
export const orderArb = fc.shuffledSubarray([...ENVELOPE_FIELDS] as string[], {
  minLength: ENVELOPE_FIELDS.length,
});
/** Well inside the freshness window, leaving room for the time a request takes. */
export const freshOffsetArb = fc.integer({ min: -(WINDOW_MS - 10_000), max: WINDOW_MS - 10_000 });
export const jsonArb = fc.jsonValue({ maxDepth: 2 });
const safeKeyArb = fc.string({ maxLength: 10 }).filter((key) => key !== '__proto__');

export const validArgsArb: Record<PostTool, fc.Arbitrary<Record<string, unknown>>> = {
  server_identity: fc.constant({}),
  batch_sum: fc.array(finiteArb, { minLength: 1, maxLength: 50 }).map((numbers) => ({ numbers })),
  poll_job: jobIdArb.map((job_id) => ({ job_id })),
  cancel_job: jobIdArb.map((job_id) => ({ job_id })),
  start_long_task: fc.record({
    seconds: fc.integer({ min: 1, max: 20 }),
    payload: fc.dictionary(safeKeyArb, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
  }),
};

function hasProtoKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (!Array.isArray(value) && Object.hasOwn(value, '__proto__')) return true;
  return Object.values(value).some(hasProtoKey);
}

function polluter(): Record<string, unknown> {
  const value: Record<string, unknown> = { polluted: 'yes' };
  put(value, '__proto__', { polluted: 'yes' });
  put(value, 'constructor', { prototype: { polluted: 'yes' } });
  put(value, 'prototype', { polluted: 'yes' });
  return value;
}

/** Valid arguments plus an own `__proto__` key (refused at check 8, never a prototype). */
function withProtoKey(args: Record<string, unknown>, nested: boolean): Record<string, unknown> {
  const copy = { ...args };
  const payload = copy.payload;
  if (nested && typeof payload === 'object' && payload !== null && !Array.isArray(payload)) {
    const inner = { ...(payload as Record<string, unknown>) };
    put(inner, '__proto__', polluter());
    copy.payload = inner;
  } else {
    put(copy, '__proto__', polluter());
  }
  return copy;
}

/** One number more than batch_sum takes (printed short in a counterexample). */
function tooManyNumbers(): Record<string, unknown> {
  const args = { numbers: new Array<number>(BATCH_SUM_MAX_NUMBERS + 1).fill(1) };
  Object.defineProperty(args, fc.toStringMethod, {
    value: () => `{"numbers":[1 × ${BATCH_SUM_MAX_NUMBERS + 1}]}`,
  });
  return args;
}

const nearMissArgsArb: Record<PostTool, fc.Arbitrary<unknown>> = {
  server_identity: fc.dictionary(fc.string(), jsonArb, { minKeys: 1, maxKeys: 3 }),
  batch_sum: fc.oneof(
    fc.constant({ numbers: [] }),
    fc.constant({}),
    fc.constant(tooManyNumbers()),
    fc.constant({ numbers: [Number.MAX_VALUE, Number.MAX_VALUE] }),
    fc.constant({ numbers: [-Number.MAX_VALUE, -Number.MAX_VALUE, 1] }),
    fc.constant({ Numbers: [1] }),
    fc
      .tuple(
        fc.array(finiteArb, { maxLength: 5 }),
        fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.array(finiteArb)),
      )
      .map(([numbers, junk]) => ({ numbers: [...numbers, junk] })),
    fc
      .tuple(fc.array(finiteArb, { minLength: 1, maxLength: 5 }), safeKeyArb, jsonArb)
      .map(([numbers, key, value]) => ({ numbers, [`${key}_x`]: value })),
    jsonArb.map((numbers) => ({ numbers })),
  ),
  poll_job: fc.oneof(
    fc.constant({}),
    fc.constant({ job_id: '' }),
    fc.integer({ min: 129, max: 300 }).map((n) => ({ job_id: 'j'.repeat(n) })),
    fc
      .oneof(fc.integer(), fc.constant(null), fc.boolean(), fc.array(fc.uuid()))
      .map((job_id) => ({ job_id })),
    fc.tuple(fc.uuid(), safeKeyArb, jsonArb).map(([job_id, key, value]) => ({
      job_id,
      [`${key}_x`]: value,
    })),
  ),
  cancel_job: fc.oneof(
    fc.constant({}),
    fc.constant({ job_id: '' }),
    fc.integer({ min: 129, max: 300 }).map((n) => ({ job_id: 'j'.repeat(n) })),
    fc.oneof(fc.integer(), fc.constant(null), fc.boolean()).map((job_id) => ({ job_id })),
  ),
  start_long_task: fc.oneof(
    fc
      .oneof(
        fc.integer({ min: -1_000_000, max: 0 }),
        fc.integer({ min: 21, max: 1_000_000 }),
        fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Number.isInteger(x)),
        fc.string(),
        fc.constant(null),
      )
      .map((seconds) => ({ seconds, payload: {} })),
    fc
      .oneof(fc.array(jsonArb), fc.constant(null), fc.string(), fc.integer())
      .map((payload) => ({ seconds: 1, payload })),
    fc.constant({ seconds: 1 }),
    fc.constant({ payload: {} }),
    fc.constant({ seconds: 1, payload: {}, extra: true }),
  ),
};

/** Arguments that the tool's contract refuses (check 8). */
export function invalidArgsArb(tool: PostTool): fc.Arbitrary<unknown> {
  return fc
    .oneof(
      { arbitrary: nearMissArgsArb[tool], weight: 4 },
      {
        arbitrary: fc
          .tuple(validArgsArb[tool], fc.boolean())
          .map(([args, nested]) => withProtoKey(args, nested)),
        weight: 1,
      },
      { arbitrary: fc.dictionary(fc.string(), jsonArb, { maxKeys: 4 }), weight: 1 },
    )
    .filter((args) => hasProtoKey(args) || !tools[tool].input.safeParse(args).success);
}

function callArb(tool: PostTool, signers: readonly Signer[]): fc.Arbitrary<CallSpec> {
  return fc.record({
    tool: fc.constant(tool),
    args: validArgsArb[tool],
    signer: fc.constantFrom(...signers),
    sendKid: fc.boolean(),
    requestId: idArb,
    nonce: nonceArb,
    tsOffset: freshOffsetArb,
    order: orderArb,
  });
}

export const validCallArb: fc.Arbitrary<CallSpec> = fc.oneof(
  callArb('server_identity', ALL_SIGNERS),
  callArb('batch_sum', FULL_SIGNERS),
  callArb('poll_job', FULL_SIGNERS),
  callArb('cancel_job', FULL_SIGNERS),
);

// ---------------------------------------------------------------------------------------------
// Poison for check 1: values JSON can carry but a canonical envelope cannot (DESIGN 1.3)

/** [kind, size]: rendered when sent, so a failing case prints small. */
export type Poison = readonly [kind: string, n: number];

const POISON_TOKENS = [
  '1e400',
  '-1e400',
  '1e309',
  '-2e308',
  `1${'0'.repeat(400)}`,
  '"\\ud800"',
  '"\\udfff"',
  '"a\\udc00b"',
  '"\\ud83d"',
  '"\\udc00\\ud800"',
  '{"\\ud800":1}',
  '["ok",[1e999]]',
];

export function renderPoison([kind, n]: Poison): string {
  switch (kind) {
    case 'token':
      return POISON_TOKENS[n % POISON_TOKENS.length]!;
    case 'deepArrays':
      return '['.repeat(n) + ']'.repeat(n);
    case 'deepObjects':
      return `${'{"a":'.repeat(n)}null${'}'.repeat(n)}`;
    case 'hugeArray':
      return `[${'0,'.repeat(n - 1)}0]`;
    case 'manyKeys':
      return `{${Array.from({ length: n }, (_, i) => `"k${i}":0`).join(',')}}`;
    case 'longString':
      return `"${'a'.repeat(n)}"`;
    default:
      throw new Error(`unknown poison ${kind}`);
  }
}

/** Nesting that is refused wherever it sits (an injected value is at depth 1 or 2). */
const tooDeepArb = fc.oneof(
  { arbitrary: fc.integer({ min: 64, max: 300 }), weight: 5 },
  { arbitrary: fc.integer({ min: 64, max: 100_000 }), weight: 2 },
  { arbitrary: fc.constant(100_000), weight: 1 },
);

export const poisonArb: fc.Arbitrary<Poison> = fc.oneof(
  { arbitrary: fc.tuple(fc.constant('token'), fc.nat()), weight: 8 },
  { arbitrary: fc.tuple(fc.constant('deepArrays'), tooDeepArb), weight: 3 },
  { arbitrary: fc.tuple(fc.constant('deepObjects'), tooDeepArb), weight: 2 },
  {
    arbitrary: fc.tuple(
      fc.constant('hugeArray'),
      fc.integer({ min: MAX_ITEMS + 1, max: MAX_ITEMS + 2_000 }),
    ),
    weight: 1,
  },
  {
    arbitrary: fc.tuple(
      fc.constant('manyKeys'),
      fc.integer({ min: MAX_KEYS + 1, max: MAX_KEYS + 500 }),
    ),
    weight: 1,
  },
  {
    arbitrary: fc.tuple(
      fc.constant('longString'),
      fc.integer({ min: MAX_STRING_LENGTH + 1, max: MAX_STRING_LENGTH + 100 }),
    ),
    weight: 1,
  },
);

/** Adds `"zz": <text>` to the envelope's args (or to the envelope itself). */
export function inject(body: string, text: string, top: boolean, argsEmpty: boolean): string {
  const at = top ? -1 : body.indexOf('"args":{');
  if (at === -1) return `{"zz":${text},${body.slice(1)}`;
  const open = at + '"args":{'.length;
  return `${body.slice(0, open)}"zz":${text}${argsEmpty ? '' : ','}${body.slice(open)}`;
}

// ---------------------------------------------------------------------------------------------
// Random bodies

type RandomBody = { kind: string; text: string | Uint8Array };

const envelopeShapedArb = fc
  .record(
    {
      v: fc.oneof(fc.constant(PROTOCOL_VERSION), idArb),
      request_id: idArb,
      ts_ms: fc.oneof(
        freshOffsetArb.map((off) => Date.now() + off),
        fc.integer(),
      ),
      client_id: fc.oneof(fc.constantFrom(...ALL_SIGNERS.map((s) => s.clientId)), idArb),
      server_id: fc.oneof(fc.constant(SERVER_ID), idArb),
      tool: fc.constantFrom(...POST_TOOLS),
      args: fc.oneof(validArgsArb.batch_sum, fc.constant({}), fc.dictionary(fc.string(), jsonArb)),
      nonce: nonceArb,
      kid: fc.constantFrom('k1', 'k2', 'clé'),
      signature: fc.stringMatching(/^[0-9a-f]{64}$/),
    },
    {
      // Every field but kid.
      requiredKeys: ENVELOPE_FIELDS.filter(
        (field): field is Exclude<EnvelopeField, 'kid'> => field !== 'kid',
      ),
    },
  )
  .map((envelope) => ({ ...envelope, nonce: unique(envelope.nonce) }));

/** Puts `extra` under `key` in a random object of `value` (or wraps it in one). */
function plant(value: unknown, key: string, extra: unknown, pick: number): unknown {
  const objects: Array<Record<string, unknown>> = [];
  const walk = (v: unknown) => {
    if (typeof v !== 'object' || v === null) return;
    if (!Array.isArray(v)) objects.push(v as Record<string, unknown>);
    for (const item of Object.values(v)) walk(item);
  };
  const root = JSON.parse(JSON.stringify(value) ?? 'null') as unknown;
  walk(root);
  const target = objects[pick % Math.max(objects.length, 1)];
  if (target) {
    put(target, key, extra);
    return root;
  }
  const wrapper: Record<string, unknown> = { value: root };
  put(wrapper, key, extra);
  return wrapper;
}

export const randomBodyArb: fc.Arbitrary<RandomBody> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }).map((text) => ({ kind: 'text', text })),
  fc.string().map((text) => ({ kind: 'ascii', text })),
  fc.json().map((text) => ({ kind: 'json', text })),
  fc.anything().map((v) => ({ kind: 'anything', text: JSON.stringify(v) ?? 'undefined' })),
  fc.uint8Array({ maxLength: 300 }).map((text) => ({ kind: 'bytes', text })),
  fc
    .tuple(
      fc.constantFrom('arrays', 'objects', 'mixed', 'unclosed'),
      fc.oneof(fc.integer({ min: 1, max: 200 }), tooDeepArb),
    )
    .map(([shape, d]) => ({
      kind: `deep-${shape}`,
      text:
        shape === 'arrays'
          ? '['.repeat(d) + ']'.repeat(d)
          : shape === 'objects'
            ? `${'{"a":'.repeat(d)}0${'}'.repeat(d)}`
            : shape === 'mixed'
              ? `${'[{"a":'.repeat(d)}0${'}]'.repeat(d)}`
              : '['.repeat(d),
    })),
  fc.tuple(poisonArb, fc.nat(), envelopeShapedArb).map(([poison, where, envelope]) => {
    const text = renderPoison(poison);
    const forms = [
      `[1,${text}]`,
      `{"a":${text}}`,
      inject(JSON.stringify(envelope), text, where % 4 === 0, false),
    ];
    return { kind: `poison-${poison[0]}`, text: forms[where % forms.length]! };
  }),
  fc
    .tuple(
      fc.oneof(jsonArb, envelopeShapedArb),
      fc.constantFrom('__proto__', 'constructor', 'prototype'),
      fc.nat(),
    )
    .map(([value, key, pick]) => ({
      kind: `proto-${key}`,
      text: JSON.stringify(plant(value, key, polluter(), pick)),
    })),
  fc.constant({
    kind: 'proto-literal',
    text: '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}',
  }),
  envelopeShapedArb.map((envelope) => ({
    kind: 'envelope-shaped',
    text: JSON.stringify(envelope),
  })),
  fc.tuple(envelopeShapedArb, fc.nat()).map(([envelope, cut]) => {
    const text = JSON.stringify(envelope);
    return { kind: 'truncated', text: text.slice(0, cut % text.length) };
  }),
  fc.constant({ kind: 'bom', text: '\ufeff{}' }),
);

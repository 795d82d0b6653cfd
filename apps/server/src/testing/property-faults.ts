// The faults the property-based security suite (security.property.test.ts) injects to make a
// call stop at a given check of DESIGN 1.4, one kind per check: how each is generated (applied
// by runTargeted in property-targeted.ts).
import { PROTOCOL_VERSION } from '@signet/protocol';
import fc from 'fast-check';
import { idArb, jsonArb, type Poison, poisonArb } from './property-arbitraries.ts';
import {
  ALL_SIGNERS,
  ENVELOPE_FIELDS,
  type EnvelopeField,
  POST_TOOLS,
  SERVER_ID,
  WINDOW_MS,
} from './property-server.ts';

export type Fault = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;
export const FAULTS: readonly Fault[] = [1, 2, 3, 4, 5, 6, 7, 8];

export type F1 =
  | { kind: 'inject'; poison: Poison; top: boolean }
  | { kind: 'truncate'; pick: number }
  | { kind: 'suffix'; text: string }
  | { kind: 'contentType'; type: string | null }
  | { kind: 'tooLarge'; extra: number };

export const f1Arb: fc.Arbitrary<F1> = fc.oneof(
  {
    arbitrary: fc
      .record({ poison: poisonArb, top: fc.boolean() })
      .map(({ poison, top }): F1 => ({ kind: 'inject', poison, top })),
    weight: 8,
  },
  { arbitrary: fc.nat().map((pick): F1 => ({ kind: 'truncate', pick })), weight: 2 },
  {
    arbitrary: fc
      .constantFrom(',', '}', ']', 'x', '"', '{}', 'null', '\u0000')
      .map((text): F1 => ({ kind: 'suffix', text })),
    weight: 1,
  },
  {
    arbitrary: fc
      .constantFrom(
        null,
        '',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/jsonx',
        'application/json-seq',
        'text/json',
        'application/*',
        '*/*',
      )
      .map((type): F1 => ({ kind: 'contentType', type })),
    weight: 2,
  },
  {
    arbitrary: fc
      .integer({ min: 1, max: 64 * 1024 })
      .map((extra): F1 => ({ kind: 'tooLarge', extra })),
    weight: 1,
  },
);

export type F2 =
  | { kind: 'version'; v: string }
  | { kind: 'toolMismatch'; tool: string }
  | { kind: 'unknownField'; name: string; value: unknown }
  | { kind: 'badField'; field: EnvelopeField; value: unknown }
  | { kind: 'missing'; field: EnvelopeField };

export const f2Arb: fc.Arbitrary<F2> = fc.oneof(
  fc
    .oneof(fc.constantFrom('mcp/0.2', 'MCP/0.1', 'mcp/0.1 ', 'mcp/1.0', ''), idArb)
    .filter((v) => v !== PROTOCOL_VERSION)
    .map((v): F2 => ({ kind: 'version', v })),
  fc
    .oneof(fc.constantFrom(...POST_TOOLS, 'watch_job', 'Batch_Sum'), idArb)
    .map((tool): F2 => ({ kind: 'toolMismatch', tool })),
  fc
    .record({
      name: fc
        .oneof(fc.string({ minLength: 1 }), fc.constantFrom('__proto__', 'constructor', 'extra'))
        .filter((name) => !(ENVELOPE_FIELDS as readonly string[]).includes(name)),
      value: jsonArb,
    })
    .map(({ name, value }): F2 => ({ kind: 'unknownField', name, value })),
  fc
    .oneof(
      fc.tuple(
        fc.constantFrom<EnvelopeField>('request_id', 'client_id', 'server_id', 'tool', 'kid'),
        fc.oneof(
          fc.constant(''),
          fc.integer({ min: 129, max: 400 }).map((n) => 'x'.repeat(n)),
          fc.integer(),
          fc.constant(null),
          fc.array(fc.string(), { maxLength: 2 }),
        ),
      ),
      fc.tuple(
        fc.constant<EnvelopeField>('ts_ms'),
        fc.oneof(
          fc
            .double({ noNaN: true, noDefaultInfinity: true })
            .filter((x) => !Number.isSafeInteger(x)),
          fc.constantFrom('1700000000000', null, true, 2 ** 53, -(2 ** 53)),
        ),
      ),
      fc.tuple(
        fc.constant<EnvelopeField>('nonce'),
        fc.oneof(
          fc.stringMatching(/^[A-Za-z0-9_-]{1,15}$/),
          fc.integer({ min: 129, max: 300 }).map((n) => 'n'.repeat(n)),
          fc.stringMatching(/^[A-Za-z0-9_-]{8}[+/=. ][A-Za-z0-9_-]{8}$/),
          fc.integer(),
        ),
      ),
      fc.tuple(
        fc.constant<EnvelopeField>('args'),
        fc.oneof(fc.array(jsonArb, { maxLength: 3 }), fc.constant(null), fc.string(), fc.integer()),
      ),
      fc.tuple(
        fc.constant<EnvelopeField>('v'),
        fc.oneof(fc.integer(), fc.constant(null), fc.constant('v'.repeat(33))),
      ),
      fc.tuple(
        fc.constant<EnvelopeField>('signature'),
        fc.oneof(
          fc.stringMatching(/^[0-9A-F]{64}$/).filter((s) => /[A-F]/.test(s)),
          fc.stringMatching(/^[0-9a-f]{63}$/),
          fc.stringMatching(/^[0-9a-f]{65}$/),
          fc.integer(),
          fc.constant(null),
        ),
      ),
    )
    .map(([field, value]): F2 => ({ kind: 'badField', field, value })),
  fc
    .constantFrom<EnvelopeField>(...ENVELOPE_FIELDS.filter((f) => f !== 'kid'))
    .map((field): F2 => ({ kind: 'missing', field })),
);

export type F3 =
  | { kind: 'wrongSecret'; secret: string }
  | { kind: 'otherClientsKey' }
  | { kind: 'unknownClient'; clientId: string }
  | { kind: 'otherKid' }
  | { kind: 'unknownKid'; kid: string }
  | { kind: 'flip'; pos: number; step: number }
  | { kind: 'signedOther' };

export const f3Arb: fc.Arbitrary<F3> = fc.oneof(
  fc.string({ minLength: 1 }).map((secret): F3 => ({ kind: 'wrongSecret', secret })),
  fc.constant<F3>({ kind: 'otherClientsKey' }),
  idArb
    .filter((id) => !ALL_SIGNERS.some((s) => s.clientId === id))
    .map((clientId): F3 => ({ kind: 'unknownClient', clientId })),
  fc.constant<F3>({ kind: 'otherKid' }),
  idArb
    .filter((kid) => !ALL_SIGNERS.some((s) => s.kid === kid))
    .map((kid): F3 => ({ kind: 'unknownKid', kid })),
  fc
    .record({ pos: fc.integer({ min: 0, max: 63 }), step: fc.integer({ min: 1, max: 15 }) })
    .map(({ pos, step }): F3 => ({ kind: 'flip', pos, step })),
  fc.constant<F3>({ kind: 'signedOther' }),
);

export const wrongServerArb = fc
  .oneof(
    fc.constantFrom(
      'MCP-SERVER-001',
      'mcp-server-001 ',
      ' mcp-server-001',
      'mcp-server-002',
      'mcp-server-0010',
    ),
    idArb,
  )
  .filter((id) => id !== SERVER_ID);

/** ts_ms outside the window: an offset from now, or an absolute (safe integer) time. */
export const staleArb = fc.oneof(
  fc.integer({ min: WINDOW_MS + 10_000, max: 1e12 }).map((off) => ({ offset: off })),
  fc.integer({ min: -1e12, max: -(WINDOW_MS + 10_000) }).map((off) => ({ offset: off })),
  fc.constantFrom(0, -1, 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER).map((at) => ({ at })),
);

// Single mutations of a signed envelope for the property-based security suite
// (security.property.test.ts): a field set, shifted, deleted or added, a signature character
// changed, a change anywhere inside args, or another URL path; each must be refused.
import fc from 'fast-check';
import { finiteArb, idArb, jsonArb, nonceArb, validArgsArb } from './property-arbitraries.ts';
import {
  ALL_SIGNERS,
  ENVELOPE_FIELDS,
  type EnvelopeField,
  POST_TOOLS,
  put,
  SERVER_ID,
} from './property-server.ts';

// ---------------------------------------------------------------------------------------------
// Single mutations of a signed envelope

type Mutation =
  | { kind: 'set'; field: EnvelopeField; value: unknown }
  | { kind: 'ts'; delta: number }
  | { kind: 'delete'; field: EnvelopeField }
  | { kind: 'add'; name: string; value: unknown }
  | { kind: 'sig'; pos: number; char: string }
  | {
      kind: 'args';
      op: 'rename' | 'set' | 'nudge' | 'add' | 'remove';
      pick: number;
      key: string;
      value: unknown;
    }
  | { kind: 'path'; tool: string; retarget: boolean };

function fieldValueArb(field: EnvelopeField): fc.Arbitrary<unknown> {
  switch (field) {
    case 'v':
      return fc.oneof(
        fc.constantFrom('mcp/0.2', 'MCP/0.1', 'mcp/0.1 ', ' mcp/0.1', 'mcp/0.10', 'mcp/1', ''),
        idArb,
        jsonArb,
      );
    case 'request_id':
    case 'server_id':
      return fc.oneof(
        fc.constantFrom(SERVER_ID, 'MCP-SERVER-001', 'mcp-server-002'),
        idArb,
        jsonArb,
      );
    case 'client_id':
      return fc.oneof(
        fc.constantFrom(...ALL_SIGNERS.map((s) => s.clientId), 'client-002', 'CLIENT-001'),
        idArb,
        jsonArb,
      );
    case 'tool':
      return fc.oneof(fc.constantFrom(...POST_TOOLS, 'watch_job'), idArb, jsonArb);
    case 'kid':
      return fc.oneof(fc.constantFrom('k1', 'k2', 'clé', 'k9'), idArb, jsonArb);
    case 'nonce':
      return fc.oneof(nonceArb, jsonArb);
    case 'signature':
      return fc.oneof(
        fc.stringMatching(/^[0-9a-f]{64}$/),
        fc.stringMatching(/^[0-9a-fA-F]{60,70}$/),
        jsonArb,
      );
    case 'args':
      return fc.oneof(
        validArgsArb.batch_sum,
        validArgsArb.poll_job,
        fc.constant({}),
        fc.dictionary(fc.string(), jsonArb, { maxKeys: 3 }),
        jsonArb,
      );
    case 'ts_ms':
      return fc.oneof(fc.integer(), jsonArb);
  }
}

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    arbitrary: fc
      .constantFrom(...ENVELOPE_FIELDS)
      .chain((field) =>
        fieldValueArb(field).map((value): Mutation => ({ kind: 'set', field, value })),
      ),
    weight: 4,
  },
  {
    arbitrary: fc
      .oneof(fc.integer({ min: -1_000, max: 1_000 }), fc.integer())
      .filter((delta) => delta !== 0)
      .map((delta): Mutation => ({ kind: 'ts', delta })),
    weight: 1,
  },
  {
    arbitrary: fc
      .constantFrom(...ENVELOPE_FIELDS)
      .map((field): Mutation => ({ kind: 'delete', field })),
    weight: 2,
  },
  {
    arbitrary: fc
      .record({
        name: fc.oneof(
          fc.string(),
          fc.constantFrom('__proto__', 'constructor', 'prototype', 'Signature', 'kid ', 'extra'),
        ),
        value: jsonArb,
      })
      .map(({ name, value }): Mutation => ({ kind: 'add', name, value })),
    weight: 2,
  },
  {
    arbitrary: fc
      .record({
        pos: fc.integer({ min: 0, max: 63 }),
        char: fc.oneof(
          fc.constantFrom(...'0123456789abcdef'),
          fc.constantFrom('A', 'F', 'g', ' ', '\u0000', '\ud800', 'é'),
          fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
        ),
      })
      .map(({ pos, char }): Mutation => ({ kind: 'sig', pos, char })),
    weight: 3,
  },
  {
    arbitrary: fc
      .record({
        op: fc.constantFrom('rename', 'set', 'nudge', 'add', 'remove'),
        pick: fc.nat(),
        key: fc.oneof(fc.string(), fc.constantFrom('__proto__', 'numbers', 'job_id', 'Numbers')),
        value: fc.oneof(finiteArb, jsonArb),
      })
      .map((m): Mutation => ({ kind: 'args', ...m })),
    weight: 4,
  },
  {
    arbitrary: fc
      .record({
        tool: fc.constantFrom(...POST_TOOLS, 'watch_job', 'no_such_tool', 'batch_sum,poll_job'),
        retarget: fc.boolean(),
      })
      .map(({ tool, retarget }): Mutation => ({ kind: 'path', tool, retarget })),
    weight: 1,
  },
);

type Container = Record<string, unknown> | unknown[];

/** Applies one change inside `args` (which is a deep copy), anywhere in its tree. */
function mutateArgs(args: Container, m: Extract<Mutation, { kind: 'args' }>): void {
  const containers: Container[] = [];
  const slots: Array<{ parent: Container; key: string | number }> = [];
  const walk = (value: unknown) => {
    if (typeof value !== 'object' || value === null) return;
    const container = value as Container;
    containers.push(container);
    if (Array.isArray(container)) {
      container.forEach((item, i) => {
        slots.push({ parent: container, key: i });
        walk(item);
      });
    } else {
      for (const key of Object.keys(container)) {
        slots.push({ parent: container, key });
        walk(container[key]);
      }
    }
  };
  walk(args);
  const valueAt = (slot: { parent: Container; key: string | number }) =>
    (slot.parent as Record<string | number, unknown>)[slot.key];
  const setAt = (slot: { parent: Container; key: string | number }, value: unknown) => {
    if (Array.isArray(slot.parent)) slot.parent[slot.key as number] = value;
    else put(slot.parent, String(slot.key), value);
  };
  const add = () => {
    const container = containers[m.pick % containers.length]!;
    if (Array.isArray(container)) container.splice(m.pick % (container.length + 1), 0, m.value);
    else {
      let key = m.key;
      while (Object.hasOwn(container, key)) key += '_';
      put(container, key, m.value);
    }
  };
  const objectSlots = slots.filter((slot) => !Array.isArray(slot.parent));
  const numberSlots = slots.filter((slot) => typeof valueAt(slot) === 'number');
  switch (m.op) {
    case 'add':
      add();
      return;
    case 'rename': {
      const slot = objectSlots[m.pick % Math.max(objectSlots.length, 1)];
      if (!slot) {
        add();
        return;
      }
      const parent = slot.parent as Record<string, unknown>;
      let key = m.key;
      while (Object.hasOwn(parent, key)) key += '_';
      const entries = Object.keys(parent).map((k) => [k, parent[k]] as const);
      for (const [k] of entries) delete parent[k];
      for (const [k, v] of entries) put(parent, k === slot.key ? key : k, v);
      return;
    }
    case 'set': {
      const slot = slots[m.pick % Math.max(slots.length, 1)];
      if (slot) setAt(slot, m.value);
      else add();
      return;
    }
    case 'nudge': {
      const slot = numberSlots[m.pick % Math.max(numberSlots.length, 1)];
      if (!slot) {
        add();
        return;
      }
      const n = valueAt(slot) as number;
      const candidates = [n + 1, n * (1 + 4 * Number.EPSILON), n === 0 ? 1 : -n, n / 3];
      setAt(
        slot,
        candidates.find((c) => Number.isFinite(c) && JSON.stringify(c) !== JSON.stringify(n)),
      );
      return;
    }
    case 'remove': {
      const slot = slots[m.pick % Math.max(slots.length, 1)];
      if (!slot) {
        add();
        return;
      }
      if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
      else delete slot.parent[slot.key as string];
      return;
    }
  }
}

/** The mutated envelope (a deep copy, as it goes over the wire) and the path it is posted to. */
export function mutate(
  envelope: Record<string, unknown>,
  tool: string,
  m: Mutation,
): { path: string; envelope: Record<string, unknown> } {
  const copy = JSON.parse(JSON.stringify(envelope)) as Record<string, unknown>;
  let path = tool;
  switch (m.kind) {
    case 'set':
      put(copy, m.field, m.value);
      break;
    case 'ts':
      copy.ts_ms = (copy.ts_ms as number) + m.delta;
      break;
    case 'delete':
      delete copy[m.field];
      break;
    case 'add':
      put(
        copy,
        (ENVELOPE_FIELDS as readonly string[]).includes(m.name) ? `${m.name}_` : m.name,
        m.value,
      );
      break;
    case 'sig': {
      const signature = copy.signature as string;
      copy.signature = signature.slice(0, m.pos) + m.char + signature.slice(m.pos + 1);
      break;
    }
    case 'args':
      mutateArgs(copy.args as Container, m);
      break;
    case 'path':
      path = m.tool;
      if (m.retarget) copy.tool = m.tool;
      break;
  }
  return { path, envelope: copy };
}

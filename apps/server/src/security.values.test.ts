// Over real HTTP, on both fronts: a body's count of JSON values is capped (MAX_VALUES, W2 of issue
// 21), counted in its text before it is parsed, so that a small body of many values (100 000
// empty objects are 300 KB) cannot buy much CPU before its signature is checked.
import { MAX_VALUES } from '@signet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppServer } from './app.ts';
import {
  alice,
  expectRefusal,
  keyringOf,
  post,
  signed,
  startTestApp,
  typedClient,
  writeKeyring,
} from './testing/http.ts';
import { BATCH_SUM_MAX_NUMBERS } from './tools/contracts.ts';

/** The values of a parsed JSON value, counted as MAX_VALUES counts them (itself included). */
function valuesOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 1;
  return 1 + Object.values(value).reduce<number>((sum, item) => sum + valuesOf(item), 0);
}

/** A well-formed envelope from alice whose `args` text is `argsText` (its signature is stale). */
function withArgs(argsText: string): string {
  const request = signed(alice, 'batch_sum', { numbers: [1] });
  return JSON.stringify(request).replace('"args":{"numbers":[1]}', `"args":${argsText}`);
}

const emptyObjects = (n: number) => `[${Array(n).fill('{}').join(',')}]`;

describe.each(['signet', 'trpc'])('a body of too many JSON values, on the %s front', (front) => {
  let app: AppServer;
  beforeAll(async () => {
    app = await startTestApp(writeKeyring(keyringOf([alice])), { SIGNET_HTTP: front });
  });
  afterAll(async () => {
    await app?.close({ graceMs: 0 });
  });

  async function expectTooMany(body: string) {
    const error = expectRefusal(await post(app.url, 'batch_sum', body), 400, 'PARSE_ERROR');
    expect(error.message).toBe(`the body holds more than ${MAX_VALUES} JSON values`);
  }

  it('100 000 empty objects (300 KB, unauthenticated) are 400 PARSE_ERROR', async () => {
    await expectTooMany(withArgs(`{"numbers":${emptyObjects(100_000)}}`));
    await expectTooMany(emptyObjects(100_000));
  });

  it('wide, deep-but-legal and whitespace-padded variants are refused the same', async () => {
    // 1 000 members of 100 empty objects each.
    const wide = Array.from({ length: 1_000 }, (_, i) => `"k${i}":${emptyObjects(100)}`);
    await expectTooMany(withArgs(`{"numbers":[1],"p":{${wide.join(',')}}}`));
    // 60 levels (within MAX_DEPTH), 400 numbers at each.
    const level = Array(400).fill('0').join(',');
    await expectTooMany(withArgs(`{"numbers":${`[${level},`.repeat(60)}0${']'.repeat(60)}}`));
    // Whitespace between the values changes nothing.
    await expectTooMany(withArgs(`{"numbers":[ ${Array(MAX_VALUES).fill('{ }').join(' ,\n')} ]}`));
  });

  it(`a signed body of exactly ${MAX_VALUES} values gets past check 1; one more does not`, async () => {
    // Strings full of JSON punctuation are one value each, whatever they hold.
    const tricky = ['",[{}]\\"', '\\\\', ',,,,[[[{{{'];
    const base = signed(alice, 'batch_sum', { numbers: [1], pad: tricky });
    const room = MAX_VALUES - valuesOf(base);
    const pad = [...tricky, ...Array(room).fill(0)];
    const request = signed(alice, 'batch_sum', { numbers: [1], pad });
    expect(valuesOf(request)).toBe(MAX_VALUES);
    // batch_sum's own schema refuses `pad` (signed): checks 1 to 7 all passed.
    expectRefusal(await post(app.url, 'batch_sum', request), 400, 'INVALID_ARGS', alice);
    const over = signed(alice, 'batch_sum', { numbers: [1], pad: [...pad, 0] });
    await expectTooMany(JSON.stringify(over));
  });

  it(`batch_sum's largest call (${BATCH_SUM_MAX_NUMBERS} numbers) still works`, async () => {
    const numbers = Array.from({ length: BATCH_SUM_MAX_NUMBERS }, (_, i) => i + 0.5);
    await expect(typedClient(app.url, alice).batch_sum.mutate({ numbers })).resolves.toEqual({
      count: BATCH_SUM_MAX_NUMBERS,
      total: numbers.reduce((a, b) => a + b, 0),
    });
  });
});

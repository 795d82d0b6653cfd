// Property-based security tests (fast-check) against the real HTTP server, started as `pnpm serve`
// starts it (loadConfig + startApp, SQLite store): random valid calls, every single mutation of a
// signed envelope, hostile bodies, and a census of how far each request got through the checks
// of DESIGN 1.4 — with cases built to stop at each check, and at the FIRST failing one in order.
// The signers include an Ed25519 client, answered under the server's Ed25519 key.
// The properties stay in this one file, on one server: the census test counts the requests of all
// those before it. The machinery is in testing/property-*.ts (server, expect, arbitraries,
// mutations, faults, targeted).
import { signEnvelope } from '@signet/server/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBodyArb, validCallArb } from './testing/property-arbitraries.ts';
import { expectForgeryRefused, expectRan } from './testing/property-expect.ts';
import { mutate, mutationArb } from './testing/property-mutations.ts';
import {
  baseUrl,
  CHECK_NAMES,
  census,
  draftOf,
  expectNoPollution,
  MB,
  memoryAtStart,
  ordered,
  POST_TOOLS,
  post,
  sameCanonical,
  settledMemory,
  startServer,
  stopServer,
} from './testing/property-server.ts';
import { runTargeted, targetedArb } from './testing/property-targeted.ts';

beforeAll(startServer);
afterAll(stopServer);

// ---------------------------------------------------------------------------------------------
// The properties

describe('security properties over real HTTP (fast-check)', () => {
  it('random valid calls succeed, and their signed responses verify', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(validCallArb, { minLength: 8, maxLength: 16 }), async (specs) => {
        await Promise.all(
          specs.map(async (spec) => {
            const draft = draftOf(spec);
            const body = JSON.stringify(
              ordered(signEnvelope(draft, spec.signer.secret), spec.order),
            );
            expectRan(spec, draft, await post(spec.tool, body));
          }),
        );
      }),
      { numRuns: 80 },
    );
  }, 60_000);

  it('every single mutation of a signed envelope is refused (and spends no nonce)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(validCallArb, mutationArb), { minLength: 8, maxLength: 16 }),
        async (cases) => {
          await Promise.all(
            cases.map(async ([spec, mutation]) => {
              const draft = draftOf(spec);
              const genuine = signEnvelope(draft, spec.signer.secret);
              const forged = mutate(genuine, spec.tool, mutation);
              if (forged.path === spec.tool && sameCanonical(forged.envelope, genuine)) {
                census.noOpMutations++;
              } else {
                const body = JSON.stringify(ordered(forged.envelope, spec.order));
                expectForgeryRefused(await post(forged.path, body));
              }
              // The refused forgery did not spend the genuine envelope's nonce.
              const body = JSON.stringify(ordered(genuine, spec.order));
              expectRan(spec, draft, await post(spec.tool, body));
            }),
          );
        },
      ),
      { numRuns: 120 },
    );
  }, 60_000);

  it('random and hostile bodies get a 4xx with a reason, never a 5xx, and pollute nothing', async () => {
    const contentTypeArb = fc.constantFrom(
      'application/json',
      'application/json',
      'application/json; charset=utf-8',
      'Application/JSON',
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            body: randomBodyArb,
            tool: fc.constantFrom(...POST_TOOLS),
            contentType: contentTypeArb,
          }),
          { minLength: 8, maxLength: 16 },
        ),
        async (cases) => {
          await Promise.all(
            cases.map(async ({ body, tool, contentType }) => {
              expectForgeryRefused(await post(tool, body.text, contentType));
            }),
          );
          expectNoPollution();
        },
      ),
      { numRuns: 100 },
    );
  }, 60_000);

  it('cases built to fail at each check stop at the first failing check, in DESIGN 1.4 order', async () => {
    const perRun = fc.tuple(...[1, 2, 3, 4, 5, 6, 7, 8, 9].map(targetedArb));
    await fc.assert(
      fc.asyncProperty(perRun, async (cases) => {
        await Promise.all(cases.map(runTargeted));
        expectNoPollution();
      }),
      { numRuns: 600 },
    );
  }, 120_000);

  it('census: every check was reached, no forgery passed, no 5xx; the server is still healthy', async () => {
    const health = await fetch(`${baseUrl}/healthz`);
    expect(health.status).toBe(200);
    await health.text();
    expectNoPollution();

    const rows = CHECK_NAMES.map((name, k) => {
      const reached = census.stopped.slice(k).reduce((a, b) => a + b, 0);
      return { check: name, 'stopped here': census.stopped[k], reached };
    });
    const memory = settledMemory();
    const rssGrowthMb = (memory.rss - memoryAtStart.rss) / MB;
    const heapGrowthMb = (memory.heapUsed - memoryAtStart.heapUsed) / MB;
    console.log(
      [
        'Signet security census (DESIGN 1.4: the last check each request reached)',
        ...rows.map(
          (r) =>
            `  ${r.check.padEnd(26)} stopped ${String(r['stopped here']).padStart(6)}   reached ${String(r.reached).padStart(6)}`,
        ),
        `  total requests ${census.total}; 5xx ${census.fiveXX}; unexpected answers ${census.unexpected}; ` +
          `forgeries accepted ${census.forgeriesAccepted}; no-op mutations skipped ${census.noOpMutations}; ` +
          `Ed25519 calls run ${census.ed25519Ran}`,
        `  memory over the suite (after a full GC): heap ${heapGrowthMb >= 0 ? '+' : ''}${heapGrowthMb.toFixed(1)} MB, ` +
          `RSS ${rssGrowthMb >= 0 ? '+' : ''}${rssGrowthMb.toFixed(1)} MB (RSS keeps the high-water mark of transient garbage)`,
      ].join('\n'),
    );

    expect(census.total).toBeGreaterThanOrEqual(10_000);
    expect(census.forgeriesAccepted).toBe(0);
    // The Ed25519 signer (one of the signers of every property) was exercised too.
    expect(census.ed25519Ran).toBeGreaterThanOrEqual(100);
    expect(census.fiveXX).toBe(0);
    expect(census.unexpected).toBe(0);
    for (let k = 1; k <= 9; k++) {
      expect(
        census.stopped[k],
        `requests stopped at check ${CHECK_NAMES[k]}`,
      ).toBeGreaterThanOrEqual(500);
    }
    // What the server retains across ~12 000 hostile requests (a leak grows with each request).
    expect(heapGrowthMb).toBeLessThan(32);
    // RSS also holds freed heap pages and allocator arenas: bounded, not flat.
    expect(rssGrowthMb).toBeLessThan(512);
  });
});

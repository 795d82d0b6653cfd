import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * The workspace's packages resolve to their sources, not their (maybe unbuilt) dist/: their
 * `exports` list this condition first. Setting conditions replaces Vite's, hence the spread.
 */
const SOURCE = '@signet/source';

/** The suites that run against both HTTP fronts (SIGNET_HTTP, see apps/server/src/testing/front.ts). */
const BOTH_FRONTS = [
  'apps/server/src/e2e.client.test.ts',
  'apps/server/src/e2e.envelopes.test.ts',
  'apps/server/src/e2e.tampering.test.ts',
  'apps/server/src/security.replay.test.ts',
  'apps/server/src/security.bodies.test.ts',
  'apps/server/src/security.keyring.test.ts',
  'apps/server/src/security.rate-limit.test.ts',
  'apps/server/src/security.prototype.test.ts',
  'apps/server/src/security.disclosure.test.ts',
  'apps/server/src/security.property.test.ts',
  'apps/server/src/python-interop.test.ts',
  'apps/server/src/hostile-load.test.ts',
  'apps/server/src/limits.test.ts',
  'apps/server/src/security.client.test.ts',
];

export default defineConfig({
  resolve: { conditions: [SOURCE, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE, ...defaultServerConditions] } },
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          // Everything, on Signet's own (default) front.
          name: 'front:signet',
          include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts'],
          // Servers a test starts keep no audit log unless the test gives them a folder.
          env: { SIGNET_HTTP: 'signet', SIGNET_AUDIT: 'off' },
          // Type-level tests (*.test-d.ts) prove the inferred client types (once).
          typecheck: {
            enabled: true,
            include: ['packages/*/src/**/*.test-d.ts', 'apps/*/src/**/*.test-d.ts'],
            tsconfig: './tsconfig.typecheck.json',
          },
        },
      },
      {
        extends: true,
        test: {
          // Those suites again, on the same router served by tRPC's standalone adapter.
          name: 'front:trpc',
          include: BOTH_FRONTS,
          env: { SIGNET_HTTP: 'trpc', SIGNET_AUDIT: 'off' },
        },
      },
    ],
  },
});

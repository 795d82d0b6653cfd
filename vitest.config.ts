import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Type-level tests (*.test-d.ts) prove the inferred client types.
    typecheck: {
      enabled: true,
      include: ['packages/*/src/**/*.test-d.ts', 'apps/*/src/**/*.test-d.ts'],
      tsconfig: './tsconfig.typecheck.json',
    },
  },
});

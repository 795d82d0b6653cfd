import { defineConfig } from 'tsdown';

export default defineConfig({
  // One file per entry of `exports`; the root entry never reaches the optional peers.
  entry: {
    index: 'src/index.ts',
    node: 'src/node.ts',
    sqlite: 'src/sqlite.ts',
    redis: 'src/redis.ts',
    audit: 'src/audit.ts',
    testing: 'src/testing/index.ts',
  },
  dts: true,
  // .js and .d.ts, as "type": "module" expects (on node, tsdown defaults to .mjs and .d.mts).
  fixedExtension: false,
});

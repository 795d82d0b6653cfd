import { defineConfig } from 'tsdown';

export default defineConfig({
  entry: { index: 'src/index.ts' },
  dts: true,
  // .js and .d.ts, as "type": "module" expects (on node, tsdown defaults to .mjs and .d.mts).
  fixedExtension: false,
});

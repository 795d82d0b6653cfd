import { defineConfig } from 'tsdown';

export default defineConfig({
  // index: the library; cli: the `signet-mcp` bin (its `#!/usr/bin/env node` line is kept).
  entry: { index: 'src/index.ts', cli: 'src/cli.ts' },
  dts: true,
  // .js and .d.ts, as "type": "module" expects (on node, tsdown defaults to .mjs and .d.mts).
  fixedExtension: false,
});

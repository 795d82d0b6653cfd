// Writes apps/server/manifest.json from the example server's contracts; `--check` fails
// instead when the committed file is stale (CI runs it as `pnpm check:manifest`).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildManifest } from '@signet/contracts';
import { tools } from './tools/contracts.ts';

const path = fileURLToPath(new URL('../manifest.json', import.meta.url));
const text = `${JSON.stringify(buildManifest(tools), null, 2)}\n`;

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(path, 'utf8');
  } catch {}
  if (committed !== text) {
    console.error('apps/server/manifest.json is stale: run `pnpm generate` and commit it');
    process.exit(1);
  }
  console.log('manifest.json is up to date');
} else {
  writeFileSync(path, text);
  console.log(`wrote ${path}`);
}

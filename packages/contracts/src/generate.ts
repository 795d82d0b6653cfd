// Writes manifest.json from the contracts; `--check` fails instead when the committed file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildManifest } from './manifest.ts';
import { tools } from './tools.ts';

const path = fileURLToPath(new URL('../manifest.json', import.meta.url));
const text = `${JSON.stringify(buildManifest(tools), null, 2)}\n`;

if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(path, 'utf8');
  } catch {}
  if (committed !== text) {
    console.error('packages/contracts/manifest.json is stale: run `pnpm generate` and commit it');
    process.exit(1);
  }
  console.log('manifest.json is up to date');
} else {
  writeFileSync(path, text);
  console.log(`wrote ${path}`);
}

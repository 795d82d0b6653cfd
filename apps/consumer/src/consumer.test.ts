// The packages as a user gets them: built, packed (workspace: and catalog: versions rewritten),
// installed with npm into an empty project outside the repository, and used from the README's
// own program, compiled with that project's tsc and run with plain node.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  catalogVersion,
  PACKAGES,
  readmeProgram,
  repoRoot,
  run,
  runOk,
  substitute,
} from './project.ts';

const OPTIONAL_PEERS = ['better-sqlite3', 'bullmq', 'ioredis'];
const EXPECTED_OUTPUT = { counted: { words: 5 }, shouted: { loud: 'HELLO' } };

let tmp: string;
let project: string;
const tarballs = new Map<string, string>();

/** Writes `program` as src/<name>.ts with a tsconfig of its own, and compiles it with tsc. */
function compile(name: string, program: string) {
  writeFileSync(join(project, 'src', `${name}.ts`), program);
  writeFileSync(
    join(project, `tsconfig.${name}.json`),
    JSON.stringify({ extends: './tsconfig.json', files: [`src/${name}.ts`] }),
  );
  const tsc = join(project, 'node_modules', 'typescript', 'bin', 'tsc');
  return run(process.execPath, [tsc, '-p', `tsconfig.${name}.json`], {
    cwd: project,
    timeoutMs: 60_000,
  });
}

/** Runs a compiled program with plain node; returns what its last line of output says. */
/** npm install into the consumer project: no scripts, from npm's cache when it can. */
function npmInstall(packages: readonly string[]) {
  const flags = ['--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline'];
  return runOk('npm', ['install', ...flags, ...packages], { cwd: project, timeoutMs: 150_000 });
}

async function runProgram(name: string): Promise<unknown> {
  const { stdout } = await runOk(process.execPath, [join('dist', `${name}.js`)], {
    cwd: project,
    timeoutMs: 30_000,
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines.at(-1)!);
}

beforeAll(async () => {
  // Cached by turbo when nothing changed.
  await runOk('pnpm', ['build', '--output-logs=errors-only'], {
    cwd: repoRoot,
    timeoutMs: 180_000,
  });

  tmp = mkdtempSync(join(tmpdir(), 'signet-consumer-'));
  const packs = join(tmp, 'packs');
  mkdirSync(packs);
  for (const name of PACKAGES) {
    const { stdout } = await runOk('pnpm', ['pack', '--pack-destination', packs, '--json'], {
      cwd: join(repoRoot, 'packages', name),
      timeoutMs: 60_000,
    });
    tarballs.set(name, (JSON.parse(stdout) as { filename: string }).filename);
  }

  project = join(tmp, 'project');
  mkdirSync(join(project, 'src'), { recursive: true });
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'signet-consumer', private: true, type: 'module' }, null, 2),
  );
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        types: ['node'],
        rootDir: 'src',
        outDir: 'dist',
      },
    }),
  );
  await npmInstall([
    ...tarballs.values(),
    `zod@${catalogVersion('zod')}`,
    `typescript@${catalogVersion('typescript')}`,
    `@types/node@${catalogVersion('@types/node')}`,
  ]);
}, 300_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the packages installed from their tarballs, outside the workspace', () => {
  it('hold only dist/, package.json, README.md and LICENSE, with real versions', async () => {
    for (const [name, tarball] of tarballs) {
      const { stdout } = await runOk('tar', ['-tzf', tarball], { cwd: tmp, timeoutMs: 10_000 });
      const files = stdout.trim().split('\n');
      expect(
        files.filter(
          (file) => !/^package\/(dist\/.+|package\.json|README\.md|LICENSE)$/.test(file),
        ),
        name,
      ).toEqual([]);
      for (const needed of [
        'package.json',
        'README.md',
        'LICENSE',
        'dist/index.js',
        'dist/index.d.ts',
      ]) {
        expect(files, name).toContain(`package/${needed}`);
      }
      const manifest = readFileSync(
        join(project, 'node_modules', '@signet', name, 'package.json'),
        'utf8',
      );
      expect(manifest).not.toMatch(/"(workspace|catalog):/);
      expect(JSON.parse(manifest)).not.toHaveProperty('private');
    }
  });

  it("run the README's program, compiled with tsc, without the optional peers", async () => {
    for (const peer of OPTIONAL_PEERS) {
      expect(existsSync(join(project, 'node_modules', peer)), peer).toBe(false);
    }
    const compiled = await compile('main', readmeProgram());
    expect(compiled.output).toBe('');
    expect(compiled.code).toBe(0);
    expect(await runProgram('main')).toEqual(EXPECTED_OUTPUT);
  });

  it('refuse a wrong argument at compile time', async () => {
    const wrong = substitute(
      readmeProgram(),
      "word_count.mutate({ text: 'signed tool calls over tRPC' })",
      'word_count.mutate({ text: 42 })',
    );
    const compiled = await compile('wrong', wrong);
    expect(compiled.code).not.toBe(0);
    expect(compiled.output).toMatch(
      /src\/wrong\.ts\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/,
    );
  });

  it('type the entry points for node:http and Redis, whose declarations need no peer', async () => {
    const program = [
      "import { createServer } from 'node:http';",
      "import { createSignet, Keyring, MemoryStore } from '@signet/server';",
      "import { createSignetRequestHandler } from '@signet/server/node';",
      "import type { RedisBackendOptions } from '@signet/server/redis';",
      'export async function serve(keyring: Keyring) {',
      '  const store = new MemoryStore();',
      '  const signet = await createSignet({ contracts: {}, handlers: {}, keyring, store });',
      '  return createServer(createSignetRequestHandler(signet));',
      '}',
      "export const redis: RedisBackendOptions = { url: 'redis://localhost', runHandlers: true };",
    ].join('\n');
    const compiled = await compile('entries', program);
    expect(compiled.output).toBe('');
    expect(compiled.code).toBe(0);
  });

  it('run the program on @signet/server/sqlite once better-sqlite3 is installed', async () => {
    // npm installs the package (its JS and dependencies) without building it; the native
    // addon comes from the workspace's copy, already built for this Node (a build takes ~85 s).
    const version = catalogVersion('better-sqlite3');
    await npmInstall([`better-sqlite3@${version}`]);
    const fromServer = createRequire(join(repoRoot, 'packages', 'server', 'package.json'));
    const built = dirname(fromServer.resolve('better-sqlite3/package.json'));
    const addon = join('build', 'Release', 'better_sqlite3.node');
    mkdirSync(join(project, 'node_modules', 'better-sqlite3', 'build', 'Release'), {
      recursive: true,
    });
    copyFileSync(join(built, addon), join(project, 'node_modules', 'better-sqlite3', addon));

    let program = substitute(readmeProgram(), 'new MemoryStore()', "new SqliteStore('signet.db')");
    program = `import { SqliteStore } from '@signet/server/sqlite';\n${program}`;
    const compiled = await compile('sqlite', program);
    expect(compiled.output).toBe('');
    expect(compiled.code).toBe(0);
    expect(await runProgram('sqlite')).toEqual(EXPECTED_OUTPUT);
    expect(existsSync(join(project, 'signet.db'))).toBe(true);
  });
}, 300_000);

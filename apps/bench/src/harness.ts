// What the runner and the profiler share: the keyring, the targets' processes, the load generator.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { generateEd25519KeyPair, type KeyringFile } from '@signet/protocol';
import { generateKeyringFile } from '@signet/server';
import { namespaceKeys } from '@signet/server/redis';
import { LISTENING, repoRoot, type ServerProcess, startProcess } from '@signet/server/testing';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type {
  Credentials,
  Ed25519Credentials,
  GeneratorAnswer,
  LoadPlan,
  LoadResult,
} from './load.ts';

/** TypeScript sources, with the workspace's packages from their sources too (not dist/). */
export const tsx = ['--conditions=@signet/source', '--import', 'tsx'];
/** A file of this app, by its path under src/. */
export const bench = (file: string) => join(repoRoot, 'apps/bench/src', file);

/** Signet exactly as `pnpm serve` runs it (spawned as `node` itself, so its pid is the server's). */
export const shippedServer = ['apps/server/src/cli.ts', 'serve'];
/**
 * Its environment: the keyring, the store, and the audit log, on as by default (in `audit`, a
 * folder of the bench's own), or `off`.
 */
export const shippedEnv = (keyringPath: string, store: string, audit: string) => ({
  SIGNET_PORT: '0',
  SIGNET_KEYRING: keyringPath,
  SIGNET_STORE: store,
  SIGNET_AUDIT: audit,
  SIGNET_LOG_LEVEL: 'warn',
});

/**
 * A fresh keyring file in `dir` with `clientCount` HMAC clients and as many Ed25519 ones (with a
 * server key to answer them), and their credentials (the first HMAC one's as `credentials`).
 * Signed HTTP load is spread over the clients: the shipped server limits each client to 20 000
 * calls/s by default, and one client would hit that limit.
 */
export function benchKeyring(
  dir: string,
  clientCount = 4,
): {
  keyringPath: string;
  credentials: Credentials;
  clients: Credentials[];
  ed25519Clients: Ed25519Credentials[];
} {
  const clientIds = Array.from({ length: clientCount }, (_, i) => `bench-${i + 1}`);
  const keyringFile = generateKeyringFile({ serverId: 'bench-server', clientIds });
  const clients = keyringFile.clients.map((client) => ({
    serverId: keyringFile.server_id,
    clientId: client.client_id,
    key: client.keys[0]! as { kid: string; secret: string },
  }));
  const ed25519Clients = clientIds.map((id) => ({
    serverId: keyringFile.server_id,
    clientId: `${id}-ed25519`,
    pair: generateEd25519KeyPair(),
  }));
  const serverKey = generateEd25519KeyPair();
  const keyringPath = join(dir, 'keyring.json');
  const file: KeyringFile = {
    ...keyringFile,
    clients: [
      ...keyringFile.clients,
      ...ed25519Clients.map(({ clientId, pair }) => ({
        client_id: clientId,
        keys: [{ kid: 'e1', alg: 'ed25519' as const, public_key: pair.publicKey }],
      })),
    ],
    server_keys: [{ kid: 's1', alg: 'ed25519', private_key: serverKey.privateKey }],
  };
  writeFileSync(keyringPath, JSON.stringify(file));
  return {
    keyringPath,
    credentials: clients[0]!,
    clients,
    ed25519Clients: ed25519Clients.map(({ serverId, clientId, pair }) => ({
      serverId,
      clientId,
      key: { kid: 'e1', alg: 'ed25519', privateKey: pair.privateKey },
    })),
  };
}

/** Starts `node …tsx …args` and waits for its `listening on http://…` line (or `ready`). */
export function spawnTarget(args: string[], env: NodeJS.ProcessEnv, ready = LISTENING) {
  return startProcess(process.execPath, [...tsx, ...args], env, 30_000, ready);
}

/** Runs `run` against a target started by `spawnTarget`, then kills the target. */
export async function withTarget<T>(
  args: string[],
  env: NodeJS.ProcessEnv,
  run: (p: ServerProcess) => Promise<T>,
  ready = LISTENING,
): Promise<T> {
  const target = await spawnTarget(args, env, ready);
  try {
    return await run(target);
  } finally {
    await target.kill('SIGKILL');
  }
}

export interface Generator {
  /** Drives one plan's target; resolves to its result. One plan at a time. */
  run(plan: LoadPlan): Promise<LoadResult>;
  close(): void;
}

/** Starts the load generator (load.ts) in a process of its own, for as many plans as needed. */
export function startGenerator(): Generator {
  const child = spawn(process.execPath, [...tsx, bench('load.ts')], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const answers = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    async run(plan) {
      child.stdin!.write(`${JSON.stringify(plan)}\n`);
      let next = await answers.next();
      // (Its answers are the lines of JSON; anything else a library printed is passed over.)
      while (!next.done && !next.value.startsWith('{')) next = await answers.next();
      if (next.done) throw new Error(`the load generator exited (${child.exitCode})`);
      const answer = JSON.parse(next.value) as GeneratorAnswer;
      if ('error' in answer) throw new Error(`load generator: ${answer.error}`);
      return answer;
    },
    close() {
      child.stdin!.end();
      child.kill('SIGKILL');
    },
  };
}

/** Runs one plan in a generator of its own. */
export async function load(plan: LoadPlan): Promise<LoadResult> {
  const generator = startGenerator();
  try {
    return await generator.run(plan);
  } finally {
    generator.close();
  }
}

/** Deletes the keys of a Signet Redis deployment's `namespace` (its own keys and its queue's). */
export async function dropNamespace(url: string, namespace: string): Promise<void> {
  const redis = new Redis(url);
  try {
    for (const pattern of namespaceKeys(namespace).patterns) {
      for await (const keys of redis.scanStream({ match: pattern, count: 1000 })) {
        if ((keys as string[]).length > 0) await redis.unlink(...(keys as string[]));
      }
    }
  } finally {
    redis.disconnect();
  }
}

/** Deletes a BullMQ queue's keys (bare BullMQ's, after its run). */
export async function dropQueue(url: string, name: string): Promise<void> {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

/** What /proc counts CPU time in: clock ticks of 10 ms (USER_HZ, 100 on Linux), in µs. */
export const TICK_US = 10_000;

/**
 * CPU time (µs, user and system) that a process and its descendants have used so far, from
 * /proc. A process that exits takes its share with it.
 */
export function treeCpuUs(pid: number): number {
  let ticks = 0;
  const visit = (id: number) => {
    try {
      const fields = readFileSync(`/proc/${id}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
      for (const task of readdirSync(`/proc/${id}/task`)) {
        const children = readFileSync(`/proc/${id}/task/${task}/children`, 'utf8').trim();
        for (const child of children ? children.split(' ') : []) visit(Number(child));
      }
    } catch {
      // (Gone in between.)
    }
  };
  visit(pid);
  return ticks * TICK_US;
}

/** Resident set size of a process, in MB (VmRSS of /proc/<pid>/status). */
export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

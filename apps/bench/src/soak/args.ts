// What `pnpm soak` is asked to do: how long (`--minutes N`), and on which store (SIGNET_STORE).

export const USAGE = 'usage: pnpm soak [--minutes N]   (N from 0.25 to 1440; default 10)';

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface SoakOptions {
  minutes: number;
}

/**
 * `--minutes N` or `--minutes=N`; fractions are fine (`--minutes 0.5` for a quick try), but not
 * less than a quarter of a minute: the two windows that growth is measured between need a few
 * samples each.
 */
export function parseSoakArgs(argv: string[]): SoakOptions {
  let minutes = 10;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    let raw: string | undefined;
    if (arg === '--minutes') raw = argv[++i];
    else if (arg.startsWith('--minutes=')) raw = arg.slice('--minutes='.length);
    // (pnpm passes a `--` through when one is typed before the options.)
    else if (arg === '--') continue;
    else throw new UsageError(`unknown option ${arg}`);
    const value = raw === undefined || raw.trim() === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(value) || value < 0.25 || value > 1440) {
      throw new UsageError(`--minutes takes a number from 0.25 to 1440, not ${raw ?? 'nothing'}`);
    }
    minutes = value;
  }
  return { minutes };
}

/**
 * The store the soak's server runs on, from SIGNET_STORE as the server reads it. Unset is the
 * server's default kind, SQLite, but in a temporary folder: the soak measures the file's growth
 * and must not share it with a server of the user's.
 */
export type SoakStore =
  | { kind: 'sqlite'; path?: string }
  | { kind: 'memory' }
  | { kind: 'redis'; url: string };

export function soakStore(raw: string | undefined): SoakStore {
  if (raw === undefined || raw === '') return { kind: 'sqlite' };
  if (raw === 'memory:') return { kind: 'memory' };
  if (raw.startsWith('sqlite:') && raw.length > 'sqlite:'.length) {
    return { kind: 'sqlite', path: raw.slice('sqlite:'.length) };
  }
  if (raw.startsWith('redis://') || raw.startsWith('rediss://')) return { kind: 'redis', url: raw };
  throw new UsageError(
    `SIGNET_STORE must be sqlite:<path>, memory: or redis://host:port[/db], not "${raw}"`,
  );
}

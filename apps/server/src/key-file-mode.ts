import { statSync } from 'node:fs';

/**
 * Why a key file is open to other local users, or undefined if it is not (or cannot be read, or
 * mode bits mean nothing here). A keyring holds every client's secret: `pnpm keygen` writes it
 * 0600, but a file copied or created another way keeps the mode it got.
 */
export function openKeyFileWarning(path: string): string | undefined {
  if (process.platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    return undefined; // (a missing keyring is the keyring loader's to report)
  }
  if ((mode & 0o077) === 0) return undefined;
  return (
    `${path} is readable or writable by other users (mode 0${mode.toString(8)}): ` +
    `it holds secret keys; run \`chmod 600 ${path}\``
  );
}

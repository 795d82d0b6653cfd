import { type FSWatcher, unwatchFile, watch, watchFile } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { Keyring } from './keyring.ts';

export interface KeyringWatcher {
  /** The keyring in force now. */
  current(): Keyring;
  /** Reads the file again; a bad file is refused (logged) and the old keyring stays. */
  reload(): boolean;
  close(): void;
}

/**
 * Loads a keyring file and keeps it current: a change of the file (or SIGHUP, if the caller
 * wires it to `reload`) swaps in the new keyring at once, atomically. Each call reads the
 * keyring once, so a call in flight keeps the keys it started with.
 */
export function watchKeyring(
  path: string,
  opts: { logger: Logger; pollMs?: number },
): KeyringWatcher {
  let keyring = Keyring.load(path);
  const reload = (): boolean => {
    try {
      const next = Keyring.load(path);
      keyring = next;
      opts.logger.info({ path }, 'keyring reloaded');
      return true;
    } catch (error) {
      opts.logger.error(
        { path, reason: (error as Error).message },
        'keyring refused; keeping the old one',
      );
      return false;
    }
  };

  // fs.watch sees editors that replace the file by renaming; polling covers file systems where
  // fs.watch is silent. Both funnel into one debounced reload.
  let timer: NodeJS.Timeout | undefined;
  const changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      reload();
    }, 50);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), (_event, name) => {
      if (name === null || name === basename(path)) changed();
    });
    watcher.on('error', () => {});
    watcher.unref();
  } catch {
    watcher = undefined;
  }
  const onPoll = (
    now: { mtimeMs: number; size: number },
    before: { mtimeMs: number; size: number },
  ) => {
    if (now.mtimeMs !== before.mtimeMs || now.size !== before.size) changed();
  };
  watchFile(path, { interval: opts.pollMs ?? 500, persistent: false }, onPoll);

  return {
    current: () => keyring,
    reload,
    close: () => {
      clearTimeout(timer);
      watcher?.close();
      unwatchFile(path, onPoll);
    },
  };
}

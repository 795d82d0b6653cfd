import { existsSync } from 'node:fs';

/** `shared/` beside the repository: the project's contract, when this checkout has it. */
export const SHARED_DIR = new URL('../../../../shared/', import.meta.url);
/** The copies of it in this package (contract/README.md). */
export const CONTRACT_COPY_DIR = new URL('../contract/', import.meta.url);

/**
 * A file of the shared contract (`DESIGN.md`, `vectors/…`): from `shared/` when it is beside the
 * repository, else from this package's copy of it. For tests only.
 */
export function sharedFile(path: string): URL {
  const source = new URL(path, SHARED_DIR);
  return existsSync(source) ? source : new URL(path, CONTRACT_COPY_DIR);
}

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Loads an optional peer dependency, which only the feature (`@signet/server/sqlite`, …) that
 * needs it loads. A user who left it out gets told what to install instead of Node's bare
 * "Cannot find module". (`require`, not `import`: all of them are CommonJS, and bullmq must see
 * the very ioredis module that `@signet/server/redis` creates connections with.)
 */
export function requirePeer<T>(name: string, feature: string): T {
  try {
    return require(name) as T;
  } catch (error) {
    if (isMissing(error, name)) {
      throw new Error(
        `${feature} needs the package "${name}": install it with \`npm install ${name}\``,
        { cause: error },
      );
    }
    throw error;
  }
}

/**
 * Whether `error` says that `name` itself cannot be found: a module missing deeper inside the
 * package (a dependency of its own, a native build) is another fault, reported as it is.
 */
function isMissing(error: unknown, name: string): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  return (
    code === 'MODULE_NOT_FOUND' &&
    typeof message === 'string' &&
    message.split('\n', 1)[0] === `Cannot find module '${name}'`
  );
}

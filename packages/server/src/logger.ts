import { type Logger, pino } from 'pino';

/**
 * The logger of a server given none: warnings and errors only, as JSON lines on stderr, so that
 * an app's stdout stays its own. Pass a pino logger to see more (or less).
 */
export function defaultLogger(): Logger {
  return pino({ name: 'signet', level: 'warn' }, pino.destination(2));
}

import type { Writable } from 'node:stream';

/**
 * Returns `hold()`: called before writes, it holds `stream`'s output until the end of the current
 * event-loop turn, so that everything written in one turn goes out in one write (one syscall
 * here, one read at the other end).
 */
export function holdForTurn(stream: Writable): () => void {
  let held = false;
  const release = () => {
    held = false;
    stream.uncork();
  };
  return () => {
    if (held) return;
    held = true;
    stream.cork();
    setImmediate(release);
  };
}

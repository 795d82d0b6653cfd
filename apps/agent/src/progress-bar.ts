import type { JobProgress } from '@signet/protocol';

/** A one-line progress bar fed only by the progress the server reports. */
export function renderProgress(progress: JobProgress, width = 24): string {
  const { current, total, message } = progress;
  const label = message ? ` ${message}` : '';
  if (!total || total <= 0) return `[${'?'.repeat(width)}] ${current}${label}`;
  const filled = Math.max(0, Math.min(width, Math.round((current / total) * width)));
  const percent = Math.round(Math.max(0, Math.min(1, current / total)) * 100);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(percent).padStart(3)}%${label}`;
}

export function progressPrinter(
  out: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean },
) {
  let drawn = false;
  return {
    update(progress: JobProgress) {
      const line = renderProgress(progress);
      if (out.isTTY) {
        out.write(`\r  ${line}\u001b[K`);
        drawn = true;
      } else {
        out.write(`  ${line}\n`);
      }
    },
    done() {
      if (drawn) out.write('\n');
      drawn = false;
    },
  };
}

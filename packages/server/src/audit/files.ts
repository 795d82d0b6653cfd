import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// Where a chain's lines live: `<folder>/<chain-id>.<n>.jsonl`, n from 1, no subfolders. The
// writer names files this way; the verifier and `audit-log show` read them back in chain order.

const FILE_NAME = /^([A-Za-z0-9-]+)\.([1-9][0-9]*)\.jsonl$/;

export function auditFileName(chainId: string, n: number): string {
  return `${chainId}.${n}.jsonl`;
}

/** One file of a chain. */
export interface ChainFile {
  n: number;
  name: string;
  path: string;
}

/** Each chain's files in the folder, in order of `n` (gaps are the verifier's to report). */
export function listChains(folder: string): Map<string, ChainFile[]> {
  const chains = new Map<string, ChainFile[]>();
  for (const name of readdirSync(folder).sort()) {
    const match = FILE_NAME.exec(name);
    if (!match) continue;
    const [, chainId, n] = match as unknown as [string, string, string];
    const files = chains.get(chainId) ?? [];
    files.push({ n: Number(n), name, path: join(folder, name) });
    chains.set(chainId, files);
  }
  for (const files of chains.values()) files.sort((a, b) => a.n - b.n);
  return chains;
}

/** One line of a chain, and where it is (1-based line number, for people). */
export interface ChainLine {
  file: string;
  line: number;
  text: string;
  /** The file's last piece without a newline: a line torn by a crash mid-write. */
  unterminated: boolean;
}

/** A file's lines in order; a last piece without its newline is marked `unterminated`. */
export function readLines(file: ChainFile): ChainLine[] {
  const pieces = readFileSync(file.path, 'utf8').split('\n');
  const last = pieces.pop()!; // '' when the file ends with a newline
  const lines = pieces.map((text, i) => ({
    file: file.name,
    line: i + 1,
    text,
    unterminated: false,
  }));
  if (last !== '') {
    lines.push({ file: file.name, line: pieces.length + 1, text: last, unterminated: true });
  }
  return lines;
}

/**
 * I-JSON (RFC 7493), which RFC 8785 requires of its input: no object may name a member twice.
 * `JSON.parse` keeps the last of two values, and a parser that kept the first would see another
 * call than the one that was verified, so a body that names a member twice is refused whole
 * (DESIGN 1.1).
 */

/** Past this many names an object's names go in a Set (a list is cheaper for the usual few). */
const LIST_MAX = 16;

/** The member names seen so far in each open object; `null` for an open array. */
type Frame = string[] | Set<string> | null;

/**
 * The first member name that one object of `text` holds twice, or undefined if none does.
 * `text` must be valid JSON (JSON.parse it first): this only walks its structure, in one pass
 * and without recursion, comparing names as JSON means them (`"a"` and `"\u0061"` are one name).
 */
export function duplicateMemberName(text: string): string | undefined {
  const frames: Frame[] = [];
  let top: Frame = null;
  let expectName = false;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    switch (text.charCodeAt(i)) {
      case 0x7b: // {
        frames.push(top);
        top = [];
        expectName = true;
        break;
      case 0x5b: // [
        frames.push(top);
        top = null;
        expectName = false;
        break;
      case 0x7d: // }
      case 0x5d: // ]
        top = frames.pop() ?? null;
        expectName = false;
        break;
      case 0x2c: // ,
        expectName = top !== null;
        break;
      case 0x22: {
        // "
        const end = closingQuote(text, i);
        if (expectName) {
          const name = memberName(text, i, end);
          if (!remember(top!, name, (set) => (top = set))) return name;
          expectName = false;
        }
        i = end;
        break;
      }
    }
  }
  return undefined;
}

/** Adds `name` to an object's names; false if it was there already. */
function remember(names: string[] | Set<string>, name: string, grow: (set: Set<string>) => void) {
  if (Array.isArray(names)) {
    if (names.includes(name)) return false;
    names.push(name);
    if (names.length > LIST_MAX) grow(new Set(names));
    return true;
  }
  if (names.has(name)) return false;
  names.add(name);
  return true;
}

/** The index of the quote that closes the string opening at `start`. */
function closingQuote(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  for (;;) {
    let backslashes = 0;
    while (text.charCodeAt(end - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}

/** A member name as JSON means it: escapes decoded. */
function memberName(text: string, start: number, end: number): string {
  const raw = text.slice(start + 1, end);
  return raw.includes('\\') ? (JSON.parse(text.slice(start, end + 1)) as string) : raw;
}

import type { JobRecord } from './types.ts';

// A job's args and output never change once stored, and may be large (a request body, an output
// up to its limit): a store keeps one frozen copy of each and shares it with every record it
// hands out, so that a hundred watchers of one job hold one output, not a hundred (issue 21, V2).

/** Freezes a JSON value and everything in it, without recursion; returns it. */
export function deepFreeze<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const item = stack.pop();
    if (typeof item !== 'object' || item === null || Object.isFrozen(item)) continue;
    Object.freeze(item);
    for (const member of Object.values(item)) stack.push(member);
  }
  return value;
}

/** A copy of `record` its caller may change field by field; its frozen args and output are shared. */
export function recordCopy(record: JobRecord): JobRecord {
  return {
    ...record,
    progress: record.progress && { ...record.progress },
    error: record.error && { ...record.error },
  };
}

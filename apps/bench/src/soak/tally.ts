// What the soak's operations came to, per kind: each outcome's count, and which were not the one
// expected (with an example of each, to report).

export interface KindTally {
  expect: string;
  outcomes: Map<string, number>;
}

export interface Unexpected {
  kind: string;
  outcome: string;
  count: number;
  example: string;
}

export class Tally {
  readonly kinds = new Map<string, KindTally>();
  private readonly surprises = new Map<string, Unexpected>();
  /** Operations ended so far (for the samples' rate). */
  completed = 0;
  private readonly open = new Map<string, number>();

  /** Counts an operation in flight; call what it returns once with its outcome. */
  begin(kind: string): (outcome: string, expect: string, detail?: string) => void {
    this.open.set(kind, (this.open.get(kind) ?? 0) + 1);
    let ended = false;
    return (outcome, expect, detail) => {
      if (ended) return;
      ended = true;
      this.open.set(kind, this.open.get(kind)! - 1);
      this.record(kind, outcome, expect, detail);
    };
  }

  record(kind: string, outcome: string, expect: string, detail = outcome): void {
    this.completed++;
    const tally = this.kinds.get(kind) ?? { expect, outcomes: new Map<string, number>() };
    this.kinds.set(kind, tally);
    tally.outcomes.set(outcome, (tally.outcomes.get(outcome) ?? 0) + 1);
    if (outcome === expect) return;
    const key = `${kind}\u0000${outcome}`;
    const seen = this.surprises.get(key) ?? { kind, outcome, count: 0, example: detail };
    seen.count++;
    this.surprises.set(key, seen);
  }

  /** Operations still in flight, per kind. */
  inFlight(): Array<[string, number]> {
    return [...this.open].filter(([, n]) => n > 0);
  }

  /** The outcomes that were not the expected one, most frequent first. */
  unexpected(): Unexpected[] {
    return [...this.surprises.values()].sort((a, b) => b.count - a.count);
  }
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JobStatus, ReasonCode } from '@signet/protocol';
import { Counter, Gauge, type Histogram, Registry } from 'prom-client';
import { reasonForTrpcCode, SignetError } from './errors.ts';
import type { NonceStore } from './stores/types.ts';

// Prometheus metrics (issue 20), in a registry of each server's own (never prom-client's global
// one), so that two servers in one process keep their counts apart. Every label value comes from
// a bounded set: a tool of the contract set (anything else is UNKNOWN_TOOL_LABEL), a reason code,
// a job status. Never a client id: that would say which clients exist, and grow without bound.

/** The `tool` label of a refusal that names no tool of the contract set. */
export const UNKNOWN_TOOL_LABEL = '_unknown';

/** The `outcome` label of a call that succeeded (else its reason code). */
const OK = 'ok';

/** Seconds: a signed call takes tens of microseconds; a store round trip, milliseconds. */
const DURATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** `metrics` of `createSignet`: `true` for a registry of the server's own, or the one to use. */
export type SignetMetricsOption = boolean | { registry?: Registry };

/** One tool's call durations: counts per bucket of DURATION_BUCKETS (not cumulative), sum, count. */
interface Durations {
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * The metrics of one Signet server, and the registry that serves them. A call only adds to plain
 * numbers (no label objects, no strings built); prom-client reads them at each scrape.
 */
export class SignetMetrics {
  readonly registry: Registry;
  private readonly tools: ReadonlySet<string>;
  /** Calls by tool label, then by outcome ("ok" or a reason code). */
  private readonly outcomes = new Map<string, Map<string, number>>();
  private readonly durations = new Map<string, Durations>();
  private readonly jobs: Counter<'tool' | 'state'>;

  constructor(tools: Iterable<string>, registry: Registry = new Registry()) {
    this.registry = registry;
    this.tools = new Set(tools);
    const registers = [registry];
    const outcomes = this.outcomes;
    new Counter({
      name: 'signet_calls_total',
      help: 'Tool calls answered, by tool and outcome ("ok" or the reason code of the refusal).',
      labelNames: ['tool', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [tool, byOutcome] of outcomes) {
          for (const [outcome, count] of byOutcome) this.inc({ tool, outcome }, count);
        }
      },
    });
    new Counter({
      name: 'signet_refusals_total',
      help: `Refused requests by reason code, and tool ("${UNKNOWN_TOOL_LABEL}" when none of the contract set was named), from the HTTP layer's to the tool's.`,
      labelNames: ['reason', 'tool'],
      registers,
      collect() {
        this.reset();
        for (const [tool, byOutcome] of outcomes) {
          for (const [reason, count] of byOutcome) {
            if (reason !== OK) this.inc({ reason, tool }, count);
          }
        }
      },
    });
    registry.registerMetric(durationHistogram(this.durations) as unknown as Histogram);
    this.jobs = new Counter({
      name: 'signet_job_transitions_total',
      help: 'Jobs that entered each state in this process, by job tool (queued when created).',
      labelNames: ['tool', 'state'],
      registers,
    });
  }

  /** A call that reached its procedure: `startedAt` from `performance.now()`, and its error. */
  called(tool: string, startedAt: number, error: unknown): void {
    const seconds = (performance.now() - startedAt) / 1000;
    const label = this.toolLabel(tool);
    let durations = this.durations.get(label);
    if (!durations) {
      durations = { buckets: new Float64Array(DURATION_BUCKETS.length), sum: 0, count: 0 };
      this.durations.set(label, durations);
    }
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++;
    if (bucket < DURATION_BUCKETS.length) durations.buckets[bucket]!++;
    durations.sum += seconds;
    durations.count++;
    this.count(label, error === undefined ? OK : reasonOf(error));
  }

  /**
   * A request refused by the HTTP layer, before any procedure (check 1, an unknown tool, the
   * wrong method or media type); `tool` as the path named it, if it did. Anything but a refusal
   * (e.g. a client that went away) is not counted.
   */
  refused(error: unknown, tool: string | undefined): void {
    if (!(error instanceof SignetError)) return;
    this.count(tool === undefined ? UNKNOWN_TOOL_LABEL : this.toolLabel(tool), error.reason);
  }

  /** A job of `tool` entered `state` (a few times per job: prom-client's own counter will do). */
  jobChanged(tool: string, state: JobStatus): void {
    this.jobs.inc({ tool: this.toolLabel(tool), state });
  }

  /** Reports how many nonces `store` holds, read at each scrape (if the store can tell). */
  watchNonces(store: NonceStore): void {
    const size = store.size?.bind(store);
    if (!size) return;
    new Gauge({
      name: 'signet_nonces',
      help: 'Nonces the nonce store holds (spent, and not yet pruned), read at each scrape.',
      registers: [this.registry],
      async collect() {
        this.set(await size());
      },
    });
  }

  /** Answers a scrape: `GET` (or `HEAD`) with the Prometheus text format. */
  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end('use GET for /metrics\n');
      return;
    }
    try {
      const text = await this.registry.metrics();
      res.writeHead(200, {
        'content-type': this.registry.contentType,
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    } catch {
      // (e.g. a store that did not answer its size: no partial scrape.)
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('metrics unavailable\n');
    }
  }

  private toolLabel(tool: string): string {
    return this.tools.has(tool) ? tool : UNKNOWN_TOOL_LABEL;
  }

  /** One call of `tool` (a label already) with `outcome`; a refusal is counted as one too. */
  private count(tool: string, outcome: string): void {
    let byOutcome = this.outcomes.get(tool);
    if (!byOutcome) {
      byOutcome = new Map();
      this.outcomes.set(tool, byOutcome);
    }
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
  }
}

const DURATION_NAME = 'signet_call_duration_seconds';

/**
 * `signet_call_duration_seconds`, a histogram by tool read from `durations` at each scrape: an
 * object the registry reads as it reads its own metrics (`get`), so that a call only adds to
 * numbers, where prom-client's `Histogram.observe` builds label objects and strings.
 */
function durationHistogram(durations: ReadonlyMap<string, Durations>) {
  const bucketName = `${DURATION_NAME}_bucket`;
  const metric = {
    name: DURATION_NAME,
    help: 'Time from a procedure call to its signed answer (for watch_job, until the stream opens), by tool.',
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    async get() {
      const values: {
        labels: Record<string, string | number>;
        value: number;
        metricName: string;
      }[] = [];
      for (const [tool, d] of durations) {
        let cumulative = 0;
        DURATION_BUCKETS.forEach((le, i) => {
          cumulative += d.buckets[i]!;
          values.push({ labels: { le, tool }, value: cumulative, metricName: bucketName });
        });
        values.push({ labels: { le: '+Inf', tool }, value: d.count, metricName: bucketName });
        values.push({ labels: { tool }, value: d.sum, metricName: `${DURATION_NAME}_sum` });
        values.push({ labels: { tool }, value: d.count, metricName: `${DURATION_NAME}_count` });
      }
      return {
        name: metric.name,
        help: metric.help,
        type: metric.type,
        aggregator: metric.aggregator,
        values,
      };
    },
    // (The counts are the server's own, as the counters': a registry reset leaves them.)
    reset() {},
  };
  return metric;
}

/** The reason code of what a procedure failed with (a tRPC error, as its middleware sees it). */
function reasonOf(error: unknown): ReasonCode {
  if (error instanceof SignetError) return error.reason;
  const trpc = error as { name?: string; code?: unknown; cause?: unknown } | undefined;
  if (trpc?.name === 'TRPCError' && typeof trpc.code === 'string') {
    return reasonForTrpcCode(trpc.code as Parameters<typeof reasonForTrpcCode>[0], trpc.cause);
  }
  return 'INTERNAL';
}

/** The metrics of a server with `tools`, as its `metrics` option asks (undefined: none). */
export function signetMetrics(
  option: SignetMetricsOption | undefined,
  tools: Iterable<string>,
): SignetMetrics | undefined {
  if (!option) return undefined;
  return new SignetMetrics(tools, option === true ? undefined : option.registry);
}

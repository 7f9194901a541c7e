import type { Leaks } from "./chaos-fleet.js";
import { streamTokensPerS, type StreamRecord } from "./chaos-stream.js";

/** The rows of the seed's failure table, as the scenarios name the one they measure. */
export const SEED_ROWS = {
  pickedThenDead: "worker dies after being picked, before prefill",
  midPrefill: "worker dies mid-prefill",
  midDecode: "worker dies mid-decode",
  slowClient: "slow client",
  overload: "overload",
  coordinatorRestart: "coordinator restart",
  networkTimeout: "network timeout to a worker",
} as const;

/**
 * What one chaos scenario measured: how its streams ended, what was left held afterwards, and the
 * speed of the streams the fault did not touch against a quiet run of the same workload on the same
 * processes just before. Speeds are reported, never asserted (the machine is shared).
 */
export interface ScenarioOutcome {
  /** Key of the scenario (also the prefix of its request ids). */
  key: string;
  title: string;
  /** The row of the seed's failure table this scenario measures, if any. */
  seedFailure: string | undefined;
  streams: number;
  /** Ended with the protocol's final event and a normal reason (failed-over and retried ones included). */
  completed: number;
  /** Of those, continued on another worker mid-stream (`stream.failover` logged for the request). */
  failedOver: number;
  /** Of those, prefilled on another worker after the first one failed (x-route-decision attempts > 1). */
  retried: number;
  errorEvents: number;
  rejected: number;
  /** The connection ended without a final event. */
  cut: number;
  clientAborts: number;
  hung: number;
  leaks: Leaks;
  /** Median tokens/s per unaffected stream, quiet run and fault run, and how many streams each. */
  quietTps: number | undefined;
  faultTps: number | undefined;
  quietStreams: number;
  unaffectedStreams: number;
  /** What else was seen (drop times, rejection latency…), for the table. */
  notes: string[];
  /** Scenario-specific observations the checks read. */
  facts: Record<string, number | string | boolean>;
}

export interface SummaryInput {
  key: string;
  title: string;
  seedFailure?: string;
  records: StreamRecord[];
  failedOver: Set<string>;
  leaks: Leaks;
  quiet: StreamRecord[];
  /** Whether a stream of the fault run was untouched by the fault (it completed, too). */
  unaffected(r: StreamRecord): boolean;
  notes?: string[];
  facts?: Record<string, number | string | boolean>;
}

export function summarize(i: SummaryInput): ScenarioOutcome {
  const count = (end: StreamRecord["end"]) => i.records.filter((r) => r.end === end).length;
  const completed = i.records.filter((r) => r.end === "complete");
  const unaffected = completed.filter((r) => !i.failedOver.has(r.spec.requestId) && r.attempts === 1 && i.unaffected(r));
  const quiet = i.quiet.filter((r) => r.end === "complete");
  return {
    key: i.key,
    title: i.title,
    seedFailure: i.seedFailure,
    streams: i.records.length,
    completed: completed.length,
    failedOver: completed.filter((r) => i.failedOver.has(r.spec.requestId)).length,
    retried: completed.filter((r) => r.attempts > 1).length,
    errorEvents: count("error_event"),
    rejected: count("rejected"),
    cut: count("cut"),
    clientAborts: count("client_abort"),
    hung: count("hung"),
    leaks: i.leaks,
    quietTps: median(quiet.map(streamTokensPerS)),
    faultTps: median(unaffected.map(streamTokensPerS)),
    quietStreams: quiet.length,
    unaffectedStreams: unaffected.length,
    notes: i.notes ?? [],
    facts: i.facts ?? {},
  };
}

export function median(xs: (number | undefined)[]): number | undefined {
  const v = xs.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1]! + v[m]!) / 2;
}

export function quantile(xs: number[], q: number): number | undefined {
  const v = [...xs].sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return v[Math.min(v.length - 1, Math.floor(q * v.length))];
}

/** A one-line account of a scenario for the test log. */
export function describeOutcome(o: ScenarioOutcome): string {
  return `${o.key}: ${o.streams} streams, ${o.completed} completed (${o.failedOver} after failover, ${o.retried} after prefill retry), ` +
    `${o.errorEvents} error events, ${o.rejected} rejected, ${o.cut} cut, ${o.clientAborts} client hang-ups, ${o.hung} hung, ` +
    `leaked ${o.leaks.total}; unaffected tok/s ${fmt(o.quietTps)} quiet → ${fmt(o.faultTps)}${o.notes.length ? `; ${o.notes.join("; ")}` : ""}`;
}

const fmt = (x: number | undefined) => (x === undefined ? "–" : x.toFixed(1));

/** The results table of docs/FAILURE_MODES.md. */
export function outcomeTable(outcomes: ScenarioOutcome[]): string {
  const head = "| scenario | streams | completed | of which after failover | of which after prefill retry | error event | rejected | cut off | client hang-ups | hung | leaked sessions (coordinator + workers) | unaffected streams' tok/s: quiet → under fault (ratio) | notes |";
  const rule = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|";
  const rows = outcomes.map((o) => {
    const ratio = o.quietTps !== undefined && o.faultTps !== undefined ? ` (${(o.faultTps / o.quietTps).toFixed(2)})` : "";
    const speed = `${fmt(o.quietTps)} (n=${o.quietStreams}) → ${fmt(o.faultTps)} (n=${o.unaffectedStreams})${ratio}`;
    return `| ${o.title} | ${o.streams} | ${o.completed} | ${o.failedOver} | ${o.retried} | ${o.errorEvents} | ${o.rejected} | ${o.cut} | ${o.clientAborts} | ${o.hung} | ${o.leaks.total} | ${speed} | ${o.notes.join("; ")} |`;
  });
  return [head, rule, ...rows].join("\n");
}

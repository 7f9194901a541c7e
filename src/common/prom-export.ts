import { collectDefaultMetrics, Counter, Gauge, type Metric, type Registry } from "prom-client";
import type { BucketHistogram } from "./bucket-histogram.js";

/**
 * Metrics whose values live elsewhere and are read at scrape time: counters kept as plain numbers
 * on hot paths, and BucketHistograms.
 *   - Counters and gauges are prom-client's own, filled by their documented `collect()` hook at
 *     each scrape (a labelled one names its labels up front, as prom-client requires).
 *   - Histograms arrive already bucketed (BucketHistogram, recorded on the hot path without label
 *     hashing); prom-client has no public way to hand it bucket counts, so these implement the
 *     registry's `get()` contract, added through `registerMetric` (whose type names only the
 *     built-in classes, hence the one cast below).
 */
export type Labels = Readonly<Record<string, string>>;
export type Sample = readonly [Labels, number];

/** A reader of labelled samples, with the label names every sample carries. */
export interface LabelledRead {
  readonly labelNames: readonly string[];
  read(): Iterable<Sample>;
}

export function labelled(labelNames: readonly string[], read: () => Iterable<Sample>): LabelledRead {
  return { labelNames, read };
}

/** One unlabelled value, or labelled samples; `read` is called once per scrape. */
export type ScrapeRead = (() => number) | LabelledRead;

interface PromValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface ScrapeMetric {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  aggregator: "sum";
  get(): Promise<{ name: string; help: string; type: string; aggregator: "sum"; values: PromValue[] }>;
  reset(): void;
}

function register(registry: Registry, m: ScrapeMetric): void {
  registry.registerMetric(m as unknown as Metric);
}

const NO_LABELS: Labels = {};

/** A counter or gauge whose value (or labelled values) `read` returns at scrape time. */
export function registerScrapeMetric(
  registry: Registry,
  def: { name: string; help: string; type: "counter" | "gauge"; read: ScrapeRead },
): void {
  const r = def.read;
  const base = { name: def.name, help: def.help, labelNames: typeof r === "function" ? [] : [...r.labelNames], registers: [registry] };
  const samples = (): Iterable<Sample> => (typeof r === "function" ? [[NO_LABELS, r()]] : r.read());
  // collect() rebuilds the values from scratch: a label set that disappeared (a worker gone) goes.
  if (def.type === "gauge") new Gauge({ ...base, collect() { this.reset(); for (const [l, v] of samples()) this.set(l, v); } });
  else new Counter({ ...base, collect() { this.reset(); for (const [l, v] of samples()) this.inc(l, v); } });
}

/** A histogram over BucketHistograms (one per label set), rendered cumulatively as Prometheus wants. */
export function registerHistogram(
  registry: Registry,
  def: { name: string; help: string; read(): BucketHistogram | Iterable<readonly [Labels, BucketHistogram]> },
): void {
  register(registry, {
    name: def.name, help: def.help, type: "histogram", aggregator: "sum", reset() {},
    async get() {
      const r = def.read();
      const series: Iterable<readonly [Labels, BucketHistogram]> = Symbol.iterator in r ? r : [[NO_LABELS, r]];
      const values: PromValue[] = [];
      for (const [labels, h] of series) {
        let cumulative = 0;
        for (let i = 0; i < h.bounds.length; i++) {
          cumulative += h.counts[i]!;
          values.push({ labels: { ...labels, le: h.bounds[i]! }, value: cumulative, metricName: `${def.name}_bucket` });
        }
        values.push({ labels: { ...labels, le: "+Inf" }, value: h.count, metricName: `${def.name}_bucket` });
        values.push({ labels: { ...labels }, value: h.sum, metricName: `${def.name}_sum` });
        values.push({ labels: { ...labels }, value: h.count, metricName: `${def.name}_count` });
      }
      return { name: def.name, help: def.help, type: "histogram", aggregator: "sum", values };
    },
  });
}

/**
 * prom-client's process and Node.js metrics, less the three gauges it names `…_total`
 * (`nodejs_active_handles_total` and kin), which `promtool check metrics` rejects as non-counters
 * with a counter's suffix; their `nodejs_active_handles` etc. siblings without it remain.
 */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
    registry.removeSingleMetric(name);
  }
}

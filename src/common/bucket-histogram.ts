/**
 * A fixed-bucket histogram for hot paths (one observation per token): `observe` allocates nothing
 * and costs a binary search over the bounds. It feeds both the Prometheus export (cumulative, see
 * prom-export.ts) and the dashboard's per-second windows, which need quantiles: `quantile` assumes
 * observations are spread evenly inside a bucket (the usual Prometheus estimate).
 */
export class BucketHistogram {
  /** counts[i]: observations ≤ bounds[i] and > bounds[i-1]; the last slot is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  /** `bounds`: strictly increasing upper bounds (seconds, ratios…). */
  constructor(readonly bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new Error(`histogram bounds must increase: ${bounds.join(",")}`);
    }
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    this.observeMany(value, 1);
  }

  /** `n` observations of the same value, in O(log buckets) (a relay write of n tokens). */
  observeMany(value: number, n: number): void {
    if (!(n > 0) || !Number.isFinite(value)) return;
    const b = this.bounds;
    let lo = 0;
    let hi = b.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (value <= b[mid]!) hi = mid;
      else lo = mid + 1;
    }
    this.counts[lo]! += n;
    this.count += n;
    this.sum += value * n;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  /** Adds another histogram with the same bounds. */
  add(other: BucketHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.sum += other.sum;
    this.count += other.count;
  }

  /**
   * The q-quantile (0..1), interpolated linearly inside its bucket; undefined when empty. Values
   * past the last bound report that bound (the histogram cannot see further).
   */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const c = this.counts[i]!;
      if (c > 0 && seen + c >= rank) {
        if (i === this.bounds.length) return this.bounds[i - 1];
        const lower = i === 0 ? 0 : this.bounds[i - 1]!;
        const upper = this.bounds[i]!;
        return lower + (upper - lower) * Math.max(0, Math.min(1, (rank - seen) / c));
      }
      seen += c;
    }
    return this.bounds[this.bounds.length - 1];
  }
}

/** Latency bounds (seconds) shared by coordinator and worker so their histograms compare. */
export const TTFT_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640,
];
export const ITL_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 10, 20, 40, 80,
];
export const E2E_BUCKETS_S = [
  0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];
/** Short operations (prefill, queueing, a blocked client write). */
export const STEP_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

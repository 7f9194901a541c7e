import { BucketHistogram, ITL_BUCKETS_S, TTFT_BUCKETS_S } from "../../common/bucket-histogram.js";

/**
 * The dashboard's charts: the fleet's last minutes (default 300 s) in one-second slots, each with
 * the tokens relayed, the requests finished and refused, and histograms of TTFT and inter-token
 * latency. A ring of preallocated slots: recording allocates nothing, and a slot is cleared when
 * its second comes round again. `snapshot` merges slots into steps and reads quantiles from them.
 */
interface Slot {
  /** The second (floor(ms / 1000)) this slot holds; -1 when unused. */
  sec: number;
  tokens: number;
  finished: number;
  rejected: number;
  ttft: BucketHistogram;
  itl: BucketHistogram;
}

export interface SeriesSnapshot {
  /** Seconds per point; the last point ends at the last whole second. */
  step_s: number;
  points: number;
  tokens_per_s: number[];
  finished: number[];
  rejected: number[];
  /** Seconds; null where no request reached that point. */
  ttft_p50: (number | null)[];
  ttft_p95: (number | null)[];
  itl_p50: (number | null)[];
  itl_p95: (number | null)[];
}

export class FleetSeries {
  private readonly slots: Slot[];

  constructor(readonly seconds = 300) {
    this.slots = Array.from({ length: seconds }, () => ({
      sec: -1, tokens: 0, finished: 0, rejected: 0, ttft: new BucketHistogram(TTFT_BUCKETS_S), itl: new BucketHistogram(ITL_BUCKETS_S),
    }));
  }

  private slot(nowMs: number): Slot {
    const sec = Math.floor(nowMs / 1000);
    const s = this.slots[sec % this.seconds]!;
    if (s.sec !== sec) {
      s.sec = sec;
      s.tokens = 0;
      s.finished = 0;
      s.rejected = 0;
      s.ttft.reset();
      s.itl.reset();
    }
    return s;
  }

  tokens(n: number, nowMs: number): void {
    this.slot(nowMs).tokens += n;
  }

  ttft(seconds: number, nowMs: number): void {
    this.slot(nowMs).ttft.observe(seconds);
  }

  itl(seconds: number, n: number, nowMs: number): void {
    this.slot(nowMs).itl.observeMany(seconds, n);
  }

  finished(nowMs: number): void {
    this.slot(nowMs).finished++;
  }

  rejected(nowMs: number): void {
    this.slot(nowMs).rejected++;
  }

  /** The whole seconds before `nowMs`, oldest first, merged `stepS` at a time. */
  snapshot(nowMs: number, stepS = 2): SeriesSnapshot {
    const lastSec = Math.floor(nowMs / 1000) - 1;
    const points = Math.floor(this.seconds / stepS);
    const out: SeriesSnapshot = {
      step_s: stepS, points, tokens_per_s: [], finished: [], rejected: [], ttft_p50: [], ttft_p95: [], itl_p50: [], itl_p95: [],
    };
    const ttft = new BucketHistogram(TTFT_BUCKETS_S);
    const itl = new BucketHistogram(ITL_BUCKETS_S);
    const q = (h: BucketHistogram, p: number) => {
      const v = h.quantile(p);
      return v === undefined ? null : round(v);
    };
    for (let p = points - 1; p >= 0; p--) {
      let tokens = 0;
      let finished = 0;
      let rejected = 0;
      ttft.reset();
      itl.reset();
      for (let k = 0; k < stepS; k++) {
        const sec = lastSec - p * stepS - k;
        const s = this.slots[((sec % this.seconds) + this.seconds) % this.seconds]!;
        if (s.sec !== sec) continue;
        tokens += s.tokens;
        finished += s.finished;
        rejected += s.rejected;
        ttft.add(s.ttft);
        itl.add(s.itl);
      }
      out.tokens_per_s.push(round(tokens / stepS));
      out.finished.push(finished);
      out.rejected.push(rejected);
      out.ttft_p50.push(q(ttft, 0.5));
      out.ttft_p95.push(q(ttft, 0.95));
      out.itl_p50.push(q(itl, 0.5));
      out.itl_p95.push(q(itl, 0.95));
    }
    return out;
  }
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

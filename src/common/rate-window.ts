/**
 * Events per second over a sliding window of whole seconds (tokens/s of a worker): a ring of
 * per-second counts, so `add` is O(1) and allocates nothing. The window (default 10 s) covers the
 * current second so far and the whole seconds before it; the rate divides by its length in time
 * (at least 1 s, so a burst just after the first event does not read as a spike).
 */
export class RateWindow {
  private readonly slots: Float64Array;
  /** The second (floor(ms / 1000)) each slot currently counts. */
  private readonly seconds: Float64Array;
  private firstMs: number | undefined;

  constructor(private readonly windowS = 10) {
    this.slots = new Float64Array(windowS);
    this.seconds = new Float64Array(windowS).fill(-1);
  }

  add(n: number, nowMs: number): void {
    const sec = Math.floor(nowMs / 1000);
    const i = sec % this.windowS;
    if (this.seconds[i] !== sec) {
      this.seconds[i] = sec;
      this.slots[i] = 0;
    }
    this.slots[i]! += n;
    this.firstMs ??= nowMs;
  }

  /** Events per second over the window that ends now. */
  rate(nowMs: number): number {
    if (this.firstMs === undefined) return 0;
    const sec = Math.floor(nowMs / 1000);
    let total = 0;
    for (let i = 0; i < this.windowS; i++) {
      const s = this.seconds[i]!;
      if (s > sec - this.windowS && s <= sec) total += this.slots[i]!;
    }
    const startMs = Math.max(this.firstMs, (sec - this.windowS + 1) * 1000);
    return total / Math.max(1, (nowMs - startMs) / 1000);
  }
}

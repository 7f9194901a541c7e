/**
 * The rate at which events happen (requests leaving the admission queue for service), per second,
 * as an exponentially weighted count over a window of `windowMs` (10 s by default): recent
 * departures weigh most, one quiet window forgets most of the past. The first event only starts the
 * clock (one event tells no rate); the count of the later ones is divided by the part of the window
 * observed since, so a steady rate reads right from the second event on. O(1) per event and per
 * read; time comes from the caller.
 */
export class DrainRate {
  private count = 0;
  private lastMs = 0;
  private firstMs: number | undefined;

  constructor(private readonly windowMs = 10_000) {}

  record(nowMs: number): void {
    if (this.firstMs === undefined) {
      this.firstMs = this.lastMs = nowMs;
      return;
    }
    this.count = this.count * Math.exp(-(nowMs - this.lastMs) / this.windowMs) + 1;
    this.lastMs = nowMs;
  }

  /** Events per second; 0 before the second event. */
  perSecond(nowMs: number): number {
    if (this.firstMs === undefined || this.count === 0) return 0;
    const decayed = this.count * Math.exp(-Math.max(0, nowMs - this.lastMs) / this.windowMs);
    // Weight of the observed span under the window: 1 − e^(−span/window) (span ≥ 1 ms).
    const observed = 1 - Math.exp(-Math.max(nowMs - this.firstMs, 1) / this.windowMs);
    return (decayed / (this.windowMs * observed)) * 1000;
  }
}

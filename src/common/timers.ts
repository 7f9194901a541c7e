import type { Clock } from "./clock.js";

/**
 * Timers, injected beside the Clock so that parts which wait (the admission queue) are tested
 * exactly: `ManualTimers` fires due callbacks when its clock is advanced through it.
 */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

interface Pending {
  at: number;
  order: number;
  fn: () => void;
}

/** Timers on a ManualClock-like clock: `advance(ms)` moves the clock and runs what fell due, in order. */
export class ManualTimers implements Timers {
  private readonly pending = new Set<Pending>();
  private order = 0;

  constructor(private readonly clock: Clock & { advance(ms: number): void }) {}

  setTimeout(fn: () => void, ms: number): unknown {
    const p: Pending = { at: this.clock.now() + Math.max(0, ms), order: this.order++, fn };
    this.pending.add(p);
    return p;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as Pending);
  }

  get count(): number {
    return this.pending.size;
  }

  advance(ms: number): void {
    const end = this.clock.now() + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending) if (p.at <= end && (next === undefined || p.at < next.at || (p.at === next.at && p.order < next.order))) next = p;
      if (next === undefined) break;
      this.pending.delete(next);
      this.clock.advance(next.at - this.clock.now());
      next.fn();
    }
    this.clock.advance(end - this.clock.now());
  }
}

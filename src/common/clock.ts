/** Time, injected so that pure parts (scheduler, tables, statistics) can be tested exactly. */
export interface Clock {
  /** Monotonic milliseconds, for durations and freshness. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for timestamps that leave the process. */
  wallNow(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(private t = 0, private wall = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.wall + this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

import type { Clock } from "../common/clock.js";

/**
 * How the simulated engine waits. The real sleeper uses timers; tests inject a virtual one that
 * advances a ManualClock instead, so timing and faults are checked exactly and without waiting.
 * A sleep ends early (resolves) when its signal aborts; `Infinity` sleeps until then.
 */
export interface SimSleeper {
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const timerSleeper: SimSleeper = {
  sleep(ms, signal) {
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timeout: NodeJS.Timeout | undefined;
      let immediate: NodeJS.Immediate | undefined;
      const done = () => {
        clearTimeout(timeout);
        if (immediate !== undefined) clearImmediate(immediate);
        signal.removeEventListener("abort", done);
        resolve();
      };
      // ms ≤ 0 still yields one event-loop turn, so other sockets get served between tokens.
      if (ms <= 0) immediate = setImmediate(done);
      else if (ms !== Infinity) timeout = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  },
};

/** Advances `clock` by each finite sleep at once and records it (ms); infinite sleeps await the abort. */
export class VirtualSleeper implements SimSleeper {
  readonly sleeps: number[] = [];

  constructor(private readonly clock: Clock & { advance(ms: number): void }) {}

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    if (ms !== Infinity) {
      this.clock.advance(ms);
      return Promise.resolve();
    }
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }
}

/**
 * When `serve` starts a crashed worker again. The delay doubles from `baseMs` (500 ms) with each
 * crash, up to `maxMs` (30 s), so a worker that dies at once (a port taken, a model that fails to
 * load) is retried ever less often instead of spinning; a worker that ran for `stableMs` (60 s)
 * before it died starts over from `baseMs`. Pure: times (ms, monotonic) are passed in.
 */
export interface RestartBackoffOptions {
  baseMs: number;
  maxMs: number;
  stableMs: number;
}

export const DEFAULT_RESTART_BACKOFF: RestartBackoffOptions = { baseMs: 500, maxMs: 30_000, stableMs: 60_000 };

export class RestartBackoff {
  /** Crashes in a row, each within `stableMs` of its start. */
  private crashes = 0;

  constructor(private readonly o: RestartBackoffOptions = DEFAULT_RESTART_BACKOFF) {}

  /** A worker started at `startedMs` died at `nowMs`: how long to wait before starting it again (ms). */
  delayAfterCrash(startedMs: number, nowMs: number): number {
    if (nowMs - startedMs >= this.o.stableMs) this.crashes = 0;
    const delay = Math.min(this.o.maxMs, this.o.baseMs * 2 ** Math.min(this.crashes, 30));
    this.crashes++;
    return delay;
  }
}

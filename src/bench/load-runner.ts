import type { Rng } from "../common/rng.js";
import { gammaGapMs } from "./arrivals.js";
import { closedLoops } from "./load-client.js";
import type { RequestResult } from "./request-result.js";
import type { RequestSpec, Target } from "./targets.js";
import type { Workload } from "./workload.js";

/**
 * Drives a workload against a target, always bounded: at most `numRequests` requests, none started
 * after `durationMs`, and whatever is still running `graceMs` later is aborted (counted as failed).
 * Load is either a fixed concurrency (each of N loops sends its next request when its last one
 * ended) or arrivals at `ratePerS` with gamma gaps of shape `burstiness` (Poisson at 1), optionally
 * capped at `maxConcurrency` in flight.
 */
export interface LoadOptions {
  concurrency: number | undefined;
  ratePerS: number | undefined;
  burstiness: number;
  maxConcurrency: number | undefined;
  numRequests: number;
  durationMs: number;
  graceMs: number;
  rng: Rng;
  onResult?(r: RequestResult, inFlight: number): void;
}

export interface LoadRun {
  results: RequestResult[];
  /** From the first request's start to the last one's end (s). */
  durationS: number;
}

export async function runLoad(workload: Workload, target: Pick<Target, "send">, o: LoadOptions): Promise<LoadRun> {
  const results: RequestResult[] = [];
  const abort = new AbortController();
  const t0 = performance.now();
  const deadline = t0 + o.durationMs;
  let hardStop: NodeJS.Timeout | undefined;
  const armHardStop = () => {
    hardStop ??= setTimeout(() => abort.abort(), Math.max(0, deadline + o.graceMs - performance.now()));
  };
  let issued = 0;
  let inFlight = 0;
  let lastEnd = t0;
  let wake: (() => void)[] = [];
  const completion = () => new Promise<void>((resolve) => wake.push(resolve));
  const canIssue = () => issued < o.numRequests && performance.now() < deadline && !abort.signal.aborted;

  const send = async (spec: RequestSpec) => {
    inFlight++;
    const r = await target.send(spec, performance.now() - t0, abort.signal);
    inFlight--;
    lastEnd = performance.now();
    results.push(r);
    workload.done(spec, r);
    o.onResult?.(r, inFlight);
    const w = wake;
    wake = [];
    for (const f of w) f();
  };

  /** The next request, waiting for a conversation to become free; undefined when the run is over. */
  const nextSpec = async (): Promise<RequestSpec | undefined> => {
    for (;;) {
      if (!canIssue()) return undefined;
      const spec = workload.next(issued);
      if (spec !== undefined) {
        issued++;
        return spec;
      }
      if (workload.exhausted || inFlight === 0) return undefined;
      await completion();
    }
  };

  // The duration bound holds even when a request never ends.
  const durationTimer = setTimeout(armHardStop, o.durationMs);
  try {
    if (o.ratePerS === undefined) {
      await closedLoops(o.concurrency ?? 1, async () => {
        const spec = await nextSpec();
        if (spec !== undefined) await send(spec);
        return spec !== undefined;
      });
    } else {
      const running = new Set<Promise<void>>();
      let due = performance.now();
      for (;;) {
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, Math.max(0, deadline - performance.now()))));
        while (o.maxConcurrency !== undefined && inFlight >= o.maxConcurrency && canIssue()) await completion();
        const spec = await nextSpec();
        if (spec === undefined) break;
        const p = send(spec).finally(() => running.delete(p));
        running.add(p);
        if (Number.isFinite(o.ratePerS)) due += gammaGapMs(o.rng, o.ratePerS, o.burstiness);
      }
      armHardStop();
      await Promise.all(running);
    }
  } finally {
    clearTimeout(durationTimer);
    clearTimeout(hardStop);
  }
  results.sort((a, b) => a.index - b.index);
  return { results, durationS: Math.max(1e-9, (lastEnd - t0) / 1000) };
}

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createRng } from "../../src/common/rng.js";
import { runLoad } from "../../src/bench/load-runner.js";
import type { RequestResult } from "../../src/bench/request-result.js";
import type { RequestSpec } from "../../src/bench/targets.js";
import { parseLengthDist, RandomWorkload } from "../../src/bench/workload.js";

/** A target whose every request runs until it is aborted (a stream held open). */
const heldOpen = {
  started: 0,
  send(spec: RequestSpec, startMs: number, signal: AbortSignal): Promise<RequestResult> {
    this.started++;
    return new Promise((resolve) => {
      const end = () => resolve({
        index: spec.index, startMs, outcome: "failed", status: 0, reason: "aborted", ttftMs: undefined, e2eMs: 0, itlMs: [],
        promptTokens: undefined, completionTokens: 0, cachedTokens: undefined, text: "",
      });
      if (signal.aborted) end();
      else signal.addEventListener("abort", end, { once: true });
    });
  },
};

describe("a load run's caller", () => {
  for (const mode of ["closed loops", "arrivals"] as const) {
    it(`ends a held-open load early through its signal (${mode}), aborting what runs and starting nothing more`, async () => {
      heldOpen.started = 0;
      const stop = new AbortController();
      const t0 = performance.now();
      const run = runLoad(new RandomWorkload(parseLengthDist("4"), parseLengthDist("4"), createRng(1)), heldOpen, {
        concurrency: mode === "closed loops" ? 5 : undefined, ratePerS: mode === "arrivals" ? Infinity : undefined,
        maxConcurrency: mode === "arrivals" ? 5 : undefined, burstiness: 1,
        numRequests: 100, durationMs: 60_000, graceMs: 60_000, rng: createRng(2), signal: stop.signal,
      });
      // Five requests held open: the run waits on them until the caller says stop.
      while (heldOpen.started < 5) await new Promise((r) => setImmediate(r));
      stop.abort();
      const out = await run;
      assert.equal(out.results.length, 5);
      assert.ok(out.results.every((r) => r.reason === "aborted"));
      assert.equal(heldOpen.started, 5);
      assert.ok(performance.now() - t0 < 10_000);
    });
  }
});

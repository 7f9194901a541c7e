import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { goodput, meetsSlo, tpotOf } from "../../src/bench/goodput.js";
import { buildReport } from "../../src/bench/report.js";
import type { RequestResult } from "../../src/bench/request-result.js";
import { mean, percentile, summarize } from "../../src/bench/stats.js";

/** Deep equality where numbers may differ by rounding (1e-9). */
function near(actual: unknown, expected: unknown, path = "$"): void {
  if (typeof expected === "number" && typeof actual === "number") {
    assert.ok(Math.abs(actual - expected) < 1e-9, `${path}: ${actual} ≠ ${expected}`);
  } else if (expected !== null && typeof expected === "object") {
    assert.ok(actual !== null && typeof actual === "object", `${path}: not an object`);
    assert.deepEqual(Object.keys(actual as object).sort(), Object.keys(expected).sort(), `${path}: keys`);
    for (const k of Object.keys(expected)) near((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${path}.${k}`);
  } else assert.equal(actual, expected, path);
}

function result(over: Partial<RequestResult>): RequestResult {
  return {
    index: 0, startMs: 0, outcome: "completed", status: 200, reason: "ok", ttftMs: 10, e2eMs: 100, itlMs: [],
    promptTokens: 10, completionTokens: 10, cachedTokens: undefined, text: "", ...over,
  };
}

describe("percentiles", () => {
  const cases: [string, number[], number, number][] = [
    ["one value is every percentile", [7], 99, 7],
    ["p50 of an odd count is the middle", [1, 2, 3, 4, 5], 50, 3],
    ["p50 of an even count interpolates", [1, 2, 3, 4], 50, 2.5],
    ["p90 of 1..10 interpolates at rank 8.1", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9.1],
    ["p99 of 1..100 at rank 98.01", Array.from({ length: 100 }, (_, i) => i + 1), 99, 99.01],
    ["p0 is the minimum", [3, 5, 9], 0, 3],
    ["p100 is the maximum", [3, 5, 9], 100, 9],
  ];
  for (const [name, sorted, p, want] of cases) it(name, () => assert.ok(Math.abs(percentile(sorted, p) - want) < 1e-9, `${percentile(sorted, p)}`));

  it("refuses no values", () => assert.throws(() => percentile([], 50), RangeError));

  it("summarizes unsorted values", () => {
    near(summarize([40, 10, 30, 20]), { count: 4, mean: 25, p50: 25, p90: 37, p99: 39.7, max: 40 });
    assert.equal(summarize([]), null);
    assert.equal(mean([]), 0);
  });
});

describe("goodput", () => {
  it("computes TPOT as (E2E − TTFT) / (tokens − 1)", () => {
    assert.equal(tpotOf(result({ ttftMs: 10, e2eMs: 100, completionTokens: 10 })), 10);
    assert.equal(tpotOf(result({ completionTokens: 1 })), undefined);
    assert.equal(tpotOf(result({ ttftMs: undefined })), undefined);
  });

  const slo = { ttftMs: 20, tpotMs: 10, e2eMs: 150 };
  const cases: [string, Partial<RequestResult>, boolean][] = [
    ["a request within every bound is good", {}, true],
    ["bounds are inclusive", { ttftMs: 20, e2eMs: 150, completionTokens: 14 }, true],
    ["a slow first token is not", { ttftMs: 21 }, false],
    ["a slow stream is not (TPOT 11)", { e2eMs: 109 }, false],
    ["a long request is not", { e2eMs: 151, completionTokens: 100 }, false],
    ["a failed request never is", { outcome: "failed" }, false],
    ["a rejected request never is", { outcome: "rejected", status: 503 }, false],
    ["a completed request without any token misses a TTFT bound", { ttftMs: undefined, completionTokens: 0 }, false],
  ];
  for (const [name, over, want] of cases) it(name, () => assert.equal(meetsSlo(result(over), slo), want));

  it("counts good requests per second of the run and as a fraction of the completed", () => {
    const rs = [result({}), result({ ttftMs: 50 }), result({}), result({ outcome: "failed" })];
    assert.deepEqual(goodput(rs, { ttftMs: 20 }, 2), { goodRequests: 2, requestsPerS: 1, fraction: 2 / 3 });
    assert.deepEqual(goodput(rs, {}, 2), { goodRequests: 3, requestsPerS: 1.5, fraction: 1 });
  });
});

describe("the bench report", () => {
  it("counts outcomes by status and reason and sums throughput over the duration", () => {
    const rs = [
      result({ index: 0, itlMs: [5, 7], completionTokens: 3, ttftMs: 10, e2eMs: 22, promptTokens: 8, cachedTokens: 4 }),
      result({ index: 1, itlMs: [6], completionTokens: 2, ttftMs: 20, e2eMs: 26, promptTokens: 8, cachedTokens: 0 }),
      result({ index: 2, outcome: "rejected", status: 503, reason: "system_sessions_full", ttftMs: undefined, e2eMs: 2, completionTokens: 0, promptTokens: undefined }),
      result({ index: 3, outcome: "rejected", status: 503, reason: "system_sessions_full", ttftMs: undefined, e2eMs: 4, completionTokens: 0, promptTokens: undefined }),
      result({ index: 4, outcome: "failed", status: 200, reason: "worker_error", ttftMs: 5, e2eMs: 9, completionTokens: 1, promptTokens: undefined }),
    ];
    const r = buildReport(rs, 2, { e2eMs: 25 });
    assert.deepEqual(r.requests, {
      total: 5, completed: 2, failed: 1, rejected: 2,
      byReason: [
        { outcome: "completed", status: 200, reason: "ok", count: 2 },
        { outcome: "rejected", status: 503, reason: "system_sessions_full", count: 2 },
        { outcome: "failed", status: 200, reason: "worker_error", count: 1 },
      ],
    });
    assert.deepEqual(r.tokens, { prompt: 16, completion: 6 });
    assert.deepEqual(r.throughput, { requestsPerS: 1, outputTokensPerS: 3, totalTokensPerS: 11 });
    near(r.latencyMs.ttft, { count: 2, mean: 15, p50: 15, p90: 19, p99: 19.9, max: 20 });
    near(r.latencyMs.tpot, { count: 2, mean: 6, p50: 6, p90: 6, p99: 6, max: 6 });
    near(r.latencyMs.itl, { count: 3, mean: 6, p50: 6, p90: 6.8, p99: 6.98, max: 7 });
    assert.equal(r.latencyMs.rejection?.mean, 3);
    assert.deepEqual(r.goodput, { slo: { e2eMs: 25 }, goodRequests: 1, requestsPerS: 0.5, fraction: 0.5 });
    assert.deepEqual(r.prefixCache, { requests: 2, cachedTokens: 4, promptTokens: 16, hitRatio: 0.25 });
  });

  it("has no goodput without SLOs and no cache ratio when the server reports none", () => {
    const r = buildReport([result({})], 1, {});
    assert.equal(r.goodput, null);
    assert.equal(r.prefixCache, null);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { multiTurnStats } from "../../src/bench/multi-turn.js";
import { buildReport } from "../../src/bench/report.js";
import type { RequestResult } from "../../src/bench/request-result.js";

function turn(sessionId: string, startMs: number, o: Partial<RequestResult> = {}): RequestResult {
  return {
    index: startMs, startMs, outcome: "completed", status: 200, reason: "ok", ttftMs: 10, e2eMs: 100, itlMs: [],
    promptTokens: 100, completionTokens: 20, cachedTokens: 0, text: "", sessionId, ...o,
  };
}

describe("multi-turn statistics", () => {
  it("splits first turns from later ones by start time within each conversation, with the ideal reuse", () => {
    const s = multiTurnStats([
      // Conversation a, listed out of order: turns at 0, 50, 90 ms.
      turn("a", 90, { promptTokens: 190, cachedTokens: 150, ttftMs: 4 }),
      turn("a", 0, { promptTokens: 100, cachedTokens: 0, ttftMs: 40 }),
      turn("b", 10, { promptTokens: 100, cachedTokens: 60, ttftMs: 30 }),
      turn("a", 50, { promptTokens: 150, cachedTokens: 119, ttftMs: 6, completionTokens: 30 }),
      // b's second turn is shorter than its first's KV: its ideal is its own prompt less one.
      turn("b", 60, { promptTokens: 50, cachedTokens: 49, ttftMs: 8 }),
      // b's third turn was rejected: it counts nowhere.
      turn("b", 70, { outcome: "rejected", status: 503, promptTokens: undefined, cachedTokens: undefined, ttftMs: undefined }),
    ])!;
    assert.equal(s.conversations, 2);
    assert.deepEqual({ ...s.firstTurns, ttft: s.firstTurns.ttft?.p50 }, { requests: 2, ttft: 35, cachedTokens: 60, promptTokens: 200, hitRatio: 0.3 });
    // ideal: a2 = min(100 + 20 − 1, 149) = 119; a3 = min(150 + 30 − 1, 189) = 179; b2 = min(119, 49) = 49
    assert.equal(s.laterTurns.requests, 3);
    assert.equal(s.laterTurns.ttft?.p50, 6);
    assert.equal(s.laterTurns.cachedTokens, 119 + 150 + 49);
    assert.equal(s.laterTurns.promptTokens, 150 + 190 + 50);
    assert.equal(s.laterTurns.idealCachedTokens, 119 + 179 + 49);
    assert.equal(s.laterTurns.hitRatio, 318 / 390);
    assert.equal(s.laterTurns.idealHitRatio, 347 / 390);
  });

  it("is absent from runs without conversations", () => {
    const { sessionId: _s, ...anonymous } = turn("x", 0);
    assert.equal(multiTurnStats([anonymous]), null);
    assert.equal(buildReport([anonymous], 1, {}).multiTurn, null);
  });
});

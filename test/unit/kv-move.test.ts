import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/common/clock.js";
import { PromptTokenEstimator } from "../../src/coordinator/admission/prompt-token-estimator.js";
import { chooseMove, TransferRate, type MoveCosts } from "../../src/coordinator/fleet/kv-move-rule.js";
import type { PrefixMatch } from "../../src/coordinator/fleet/prefix-index.js";
import { WorkerClient } from "../../src/coordinator/fleet/worker-client.js";
import { WorkerTable } from "../../src/coordinator/fleet/worker-table.js";
import { KvMove, moveBudgetMs } from "../../src/coordinator/pipeline/kv-move.js";
import type { Candidate, Decision, ScoredCandidate } from "../../src/coordinator/scheduler/types.js";
import { parseHeartbeat } from "../../src/protocol/heartbeat.js";

/** 600 tokens of 512 bytes each (300 KiB) between two workers on a fast link, prefill 5 ms/token. */
const base: MoveCosts = {
  stateTokens: 600, stateBytes: 600 * 512, gainTokens: 500, transferBytesPerMs: 100_000, restoreMsPerToken: 0.05, prefillMsPerToken: 5,
};

describe("the rule for moving a conversation's KV to another worker", () => {
  const cases: { name: string; costs: Partial<MoveCosts>; move: boolean }[] = [
    { name: "moves when transfer and restore (3.07 + 30 ms) cost less than the prefill (2,500 ms)", costs: {}, move: true },
    { name: "refuses when the transfer is dearer than the prefill (307 KB at 100 B/ms: 3,072 ms)", costs: { transferBytesPerMs: 100 }, move: false },
    { name: "refuses when the restore is dearer than the prefill", costs: { restoreMsPerToken: 5 }, move: false },
    { name: "refuses when the pick already holds everything the move would bring", costs: { gainTokens: 0 }, move: false },
    { name: "refuses when the adopter measured no prefill cost (no costs published)", costs: { prefillMsPerToken: 0 }, move: false },
    { name: "moves on the first try, before any transfer was measured", costs: { transferBytesPerMs: undefined }, move: true },
    { name: "refuses a link measured at zero bytes per ms", costs: { transferBytesPerMs: 0 }, move: false },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(chooseMove({ ...base, ...c.costs }).move, c.move));
  }

  it("reports the three times it compared (ms)", () => {
    assert.deepEqual(chooseMove(base), { move: true, transferMs: 3.072, restoreMs: 30, prefillMs: 2500 });
  });

  it("bounds a move by the prefill it replaces, at least 500 ms, in whole ms a timer accepts", () => {
    for (const [prefill, budget] of [[0, 500], [120.7, 500], [526.33, 527], [2500, 2500]] as const) {
      assert.equal(moveBudgetMs(prefill), budget);
      assert.doesNotThrow(() => AbortSignal.timeout(moveBudgetMs(prefill)));
    }
  });

  it("follows the measured transfer rate as a running mean, ignoring empty transfers", () => {
    const r = new TransferRate();
    assert.equal(r.bytesPerMs, undefined);
    r.observe(1000, 10);
    assert.equal(r.bytesPerMs, 100);
    r.observe(0, 10);
    r.observe(3000, 10);
    assert.equal(r.bytesPerMs, 100 + 0.2 * (300 - 100));
  });
});

function heartbeat(id: string, beatMs = 1000) {
  return parseHeartbeat({
    worker_id: id, worker_url: `http://127.0.0.1:1/${id}`, timestamp: 0, interval_ms: beatMs,
    health: {
      alive: true, active_sessions: 0, kv_cache_bytes: 0, draining: false,
      model: { id: "m", aliases: [], context_size: 2048, kv_bytes_per_token: 640 },
      limits: { max_sessions: 1, max_session_kv_bytes: 1 << 20, max_kv_bytes: 1 << 24 },
    },
  });
}

function scored(id: string): ScoredCandidate {
  return { candidate: { id, url: `http://127.0.0.1:1/${id}` } as Candidate, total: 0.5, scores: {} };
}

/** A decision that picked `pick`, with `kept` the candidates the filters kept. */
function decided(pick: string, kept: string[], saturated: string[] = []): Extract<Decision, { ok: true }> {
  const ranked = kept.map(scored);
  return {
    ok: true, profile: "cache_aware", pick: ranked.find((s) => s.candidate.id === pick)!, runnerUp: undefined, considered: 2,
    dropped: {}, ranked, saturated, home: undefined,
  };
}

function match(slot: Record<string, number>, tiers: Record<string, number> = {}): PrefixMatch {
  return {
    blocks: 10, matched: new Map(Object.entries(slot)),
    tiers: new Map(Object.entries(tiers).map(([w, blocks]) => [w, { blocks, tier: "host" as const }])),
  };
}

describe("which worker a conversation's KV moves from", () => {
  const clock = new ManualClock();
  const table = new WorkerTable(clock, 1000);
  table.upsert(heartbeat("a"));
  table.upsert(heartbeat("b"));
  const move = new KvMove({ table, client: new WorkerClient({ connectTimeoutMs: 100, prefillTimeoutMs: 100 }), estimator: new PromptTokenEstimator(), clock });

  it("moves from the holder the filters dropped (no room there) to the pick", () => {
    assert.deepEqual(move.sourceFor(decided("b", ["b"]), match({ a: 6, b: 2 })), { id: "a", url: "http://127.0.0.1:1/a", blocks: 6, pickBlocks: 2 });
  });

  it("counts a holding in a KV tier like one in a slot", () => {
    assert.equal(move.sourceFor(decided("b", ["b"]), match({ b: 2 }, { a: 6 }))?.blocks, 6);
  });

  it("moves from a holder the saturation guard found saturated", () => {
    assert.equal(move.sourceFor(decided("b", ["a", "b"], ["a"]), match({ a: 6 }))?.id, "a");
  });

  it("does not move from a holder the scheduler kept and passed over on its merits", () => {
    assert.equal(move.sourceFor(decided("b", ["a", "b"]), match({ a: 6 })), undefined);
  });

  it("does not move when the pick holds as much as anyone (the ordinary turn)", () => {
    assert.equal(move.sourceFor(decided("b", ["b"]), match({ a: 6, b: 6 })), undefined);
    assert.equal(move.sourceFor(decided("b", ["b"]), match({})), undefined);
  });

  it("does not move from a holder whose heartbeats stopped", () => {
    clock.advance(10_000);
    assert.equal(move.sourceFor(decided("b", ["b"]), match({ a: 6 })), undefined);
  });
});

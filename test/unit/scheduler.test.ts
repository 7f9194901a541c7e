import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createRng } from "../../src/common/rng.js";
import { kvRoom, notExcluded, routable, servesModel, sessionRoom } from "../../src/coordinator/scheduler/filters.js";
import { maxScore } from "../../src/coordinator/scheduler/pickers.js";
import { seedProfile } from "../../src/coordinator/scheduler/profiles.js";
import { schedule } from "../../src/coordinator/scheduler/schedule.js";
import { kvUtilisation, sessionLoad } from "../../src/coordinator/scheduler/scorers.js";
import type { Candidate, RouteRequest } from "../../src/coordinator/scheduler/types.js";

const MiB = 1024 ** 2;
function cand(id: string, o: Partial<Candidate> = {}): Candidate {
  return {
    id, url: `http://${id}`, model: "m", fresh: true, healthy: true, draining: false,
    sessions: 0, maxSessions: 100, kvBytes: 0, maxKvBytes: 1000 * MiB, maxSessionKvBytes: 100 * MiB,
    kvBytesPerToken: 1024, contextSize: 2048, waiting: 0, slotsTotal: 8, ...o,
  };
}
const req = (o: Partial<RouteRequest> = {}): RouteRequest => ({ model: "m", tokens: 100, exclude: new Set(), ...o });
const ctx = { nowMs: 0, rng: createRng(1) };

describe("filters", () => {
  const table: [string, boolean, Candidate, RouteRequest?][] = [
    ["routable keeps a fresh healthy worker", true, cand("a")],
    ["routable drops a stale worker", false, cand("a", { fresh: false })],
    ["routable drops an unhealthy worker", false, cand("a", { healthy: false })],
    ["routable drops a draining worker", false, cand("a", { draining: true })],
  ];
  for (const [name, expected, c, r] of table) it(name, () => assert.equal(routable.keep(c, r ?? req()), expected));

  it("serves_model matches the canonical id, or any model when none is asked", () => {
    assert.equal(servesModel.keep(cand("a"), req()), true);
    assert.equal(servesModel.keep(cand("a", { model: "other" }), req()), false);
    assert.equal(servesModel.keep(cand("a", { model: "other" }), req({ model: undefined })), true);
  });

  it("not_tried drops workers a retry already tried", () => {
    assert.equal(notExcluded.keep(cand("a"), req({ exclude: new Set(["a"]) })), false);
    assert.equal(notExcluded.keep(cand("b"), req({ exclude: new Set(["a"]) })), true);
  });

  it("session_room drops a worker at its session limit", () => {
    assert.equal(sessionRoom.keep(cand("a", { sessions: 99 }), req()), true);
    assert.equal(sessionRoom.keep(cand("a", { sessions: 100 }), req()), false);
  });

  it("kv_room checks the worker total and the per-session limit", () => {
    // 100 tokens × 1 KiB = 100 KiB
    assert.equal(kvRoom.keep(cand("a", { kvBytes: 1000 * MiB - 100 * 1024 }), req()), true);
    assert.equal(kvRoom.keep(cand("a", { kvBytes: 1000 * MiB - 100 * 1024 + 1 }), req()), false);
    assert.equal(kvRoom.keep(cand("a", { maxSessionKvBytes: 100 * 1024 - 1 }), req()), false);
  });
});

describe("scorers", () => {
  const table: [string, Candidate, number, number][] = [
    ["idle", cand("a"), 1, 1],
    ["half the sessions", cand("a", { sessions: 50 }), 0.5, 1],
    ["a quarter of the KV", cand("a", { kvBytes: 250 * MiB }), 1, 0.75],
    ["over the limit clamps to 0", cand("a", { sessions: 150, kvBytes: 2000 * MiB }), 0, 0],
    ["zero limits score 0", cand("a", { maxSessions: 0, maxKvBytes: 0 }), 0, 0],
  ];
  for (const [name, c, s, k] of table) {
    it(name, () => {
      assert.equal(sessionLoad.score(c, req()), s);
      assert.equal(kvUtilisation.score(c, req()), k);
    });
  }
});

describe("the seed profile", () => {
  it("picks the lowest 0.6 × session + 0.4 × KV utilisation", () => {
    // a: 0.6×0.5 + 0.4×0 = 0.30; b: 0.6×0.2 + 0.4×0.6 = 0.36; c: 0.6×0.4 + 0.4×0.1 = 0.28 → c
    const d = schedule(seedProfile, [
      cand("a", { sessions: 50 }),
      cand("b", { sessions: 20, kvBytes: 600 * MiB }),
      cand("c", { sessions: 40, kvBytes: 100 * MiB }),
    ], req(), ctx);
    assert.ok(d.ok);
    assert.equal(d.pick.candidate.id, "c");
    assert.ok(Math.abs(d.pick.total - 0.72) < 1e-9);
    assert.deepEqual(d.pick.scores, { sessions: 0.6, kv: 0.9 });
    assert.equal(d.runnerUp?.candidate.id, "a");
    assert.equal(d.considered, 3);
  });

  it("breaks exact ties by worker id, the same way every time", () => {
    const cands = [cand("w2"), cand("w3"), cand("w1")];
    for (let i = 0; i < 5; i++) {
      const d = schedule(seedProfile, cands, req(), { nowMs: i, rng: createRng(i) });
      assert.ok(d.ok);
      assert.equal(d.pick.candidate.id, "w1");
    }
  });

  it("counts what each filter dropped when nothing remains", () => {
    const d = schedule(seedProfile, [
      cand("a", { fresh: false }),
      cand("b", { model: "x" }),
      cand("c", { sessions: 100 }),
      cand("d", { kvBytes: 1000 * MiB }),
    ], req(), ctx);
    assert.equal(d.ok, false);
    assert.deepEqual(d.dropped, { routable: 1, serves_model: 1, session_room: 1, kv_room: 1 });
  });

  it("does not modify its inputs", () => {
    const cands = Object.freeze([Object.freeze(cand("a")), Object.freeze(cand("b", { sessions: 3 }))]);
    const d = schedule(seedProfile, cands, req(), ctx);
    assert.ok(d.ok);
  });

  it("max_score picks the highest total", () => {
    const s = (id: string, total: number) => ({ candidate: cand(id), total, scores: {} });
    assert.equal(maxScore.pick([s("a", 0.2), s("b", 0.9), s("c", 0.5)], req(), ctx).candidate.id, "b");
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createRng } from "../../src/common/rng.js";
import { kvRoom, notExcluded, routable, servesModel, sessionRoom } from "../../src/coordinator/scheduler/filters.js";
import { loadOf, queuedOf } from "../../src/coordinator/scheduler/load.js";
import { maxScore, roundRobin } from "../../src/coordinator/scheduler/pickers.js";
import { cacheAwareProfile, leastLoadProfile, profileNamed, roundRobinProfile, seedProfile } from "../../src/coordinator/scheduler/profiles.js";
import { rendezvousHome, rendezvousWeight } from "../../src/coordinator/scheduler/rendezvous.js";
import { schedule } from "../../src/coordinator/scheduler/schedule.js";
import { inFlight, kvUtilisation, prefixMatch, queueDepth, sessionAffinity, sessionLoad } from "../../src/coordinator/scheduler/scorers.js";
import type { Candidate, Decision, Profile, RouteRequest } from "../../src/coordinator/scheduler/types.js";
import { SCHEDULER_PROFILES } from "../../src/common/config.js";

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

const prefix = (blocks: number, matched: Record<string, number>) => ({ blocks, matched: new Map(Object.entries(matched)) });
const picked = (d: Decision) => {
  assert.ok(d.ok);
  return d.pick.candidate.id;
};

describe("load and queue depth", () => {
  const table: [string, Partial<Candidate>, number, number][] = [
    ["idle", {}, 0, 0],
    ["half the slots", { sessions: 4 }, 0.5, 0],
    ["every slot busy", { sessions: 8 }, 1, 0],
    ["three queued for a slot", { sessions: 11 }, 11 / 8, 3],
    ["the worker reports more waiting than it is dispatched", { sessions: 2, waiting: 5 }, 0.25, 5],
    ["KV nearly full outweighs idle slots", { kvBytes: 900 * MiB }, 0.9, 0],
    ["session limit reached", { sessions: 4, maxSessions: 4 }, 1, 0],
    ["no slot count (a seed worker): sessions and KV only", { slotsTotal: 0, sessions: 30 }, 0.3, 0],
    ["no limits reported count as full", { maxSessions: 0 }, 1, 0],
  ];
  for (const [name, o, load, queued] of table) {
    it(name, () => {
      assert.equal(loadOf(cand("a", o)), load);
      assert.equal(queuedOf(cand("a", o)), queued);
    });
  }
});

describe("the added scorers", () => {
  const table: [string, Partial<Candidate>, Partial<RouteRequest>, Record<string, number>][] = [
    ["idle, nothing cached", {}, {}, { in_flight: 1, queue: 1, affinity: 0, prefix: 0 }],
    ["a quarter of the slots busy", { sessions: 2 }, {}, { in_flight: 0.75, queue: 1, affinity: 0, prefix: 0 }],
    ["every slot busy and two queued", { sessions: 10 }, {}, { in_flight: 0, queue: 1 / 3, affinity: 0, prefix: 0 }],
    ["no slot count falls back to session utilisation", { slotsTotal: 0, sessions: 25 }, {}, { in_flight: 0.75, queue: 1, affinity: 0, prefix: 0 }],
    ["the conversation's worker", {}, { affinity: "a" }, { in_flight: 1, queue: 1, affinity: 1, prefix: 0 }],
    ["another worker's conversation", {}, { affinity: "b" }, { in_flight: 1, queue: 1, affinity: 0, prefix: 0 }],
    ["3 of 4 prompt blocks held", {}, { prefix: prefix(4, { a: 3 }) }, { in_flight: 1, queue: 1, affinity: 0, prefix: 0.75 }],
    ["the whole prompt held", {}, { prefix: prefix(4, { a: 4 }) }, { in_flight: 1, queue: 1, affinity: 0, prefix: 1 }],
    ["another worker holds it", {}, { prefix: prefix(4, { b: 4 }) }, { in_flight: 1, queue: 1, affinity: 0, prefix: 0 }],
    ["a prompt shorter than a block", {}, { prefix: prefix(0, {}) }, { in_flight: 1, queue: 1, affinity: 0, prefix: 0 }],
  ];
  for (const [name, o, r, expected] of table) {
    it(name, () => {
      const c = cand("a", o);
      const rq = req(r);
      assert.deepEqual(
        { in_flight: inFlight.score(c, rq), queue: queueDepth.score(c, rq), affinity: sessionAffinity.score(c, rq), prefix: prefixMatch.score(c, rq) },
        expected,
      );
    });
  }
});

describe("rendezvous affinity", () => {
  const ids = ["w1", "w2", "w3", "w4"];
  const keys = Array.from({ length: 200 }, (_, i) => `conversation-${i}`);

  it("is the largest weight, the same whatever the order of the workers", () => {
    for (const k of keys.slice(0, 20)) {
      const home = rendezvousHome(k, ids)!;
      assert.equal(rendezvousHome(k, [...ids].reverse()), home);
      for (const id of ids) assert.ok(rendezvousWeight(k, id) <= rendezvousWeight(k, home));
    }
    assert.equal(rendezvousHome("x", []), undefined);
  });

  it("moves only the conversations of a worker that leaves", () => {
    for (const k of keys) {
      const before = rendezvousHome(k, ids);
      const after = rendezvousHome(k, ids.filter((i) => i !== "w4"));
      if (before !== "w4") assert.equal(after, before, k);
      else assert.notEqual(after, "w4");
    }
    assert.ok(keys.some((k) => rendezvousHome(k, ids) === "w4"), "some conversations lived on w4");
  });

  it("gives the home within the candidates the filters kept, so a full home hands over to the next", () => {
    const k = keys.find((x) => rendezvousHome(x, ids) === "w2")!;
    const fleet = ids.map((id) => cand(id));
    const d = schedule(cacheAwareProfile(), fleet, req({ affinityKey: k }), ctx);
    assert.ok(d.ok);
    assert.equal(d.home, "w2");
    assert.equal(d.pick.candidate.id, "w2");
    const full = schedule(cacheAwareProfile(), fleet.map((c) => (c.id === "w2" ? { ...c, sessions: 100 } : c)), req({ affinityKey: k }), ctx);
    assert.ok(full.ok);
    assert.equal(full.home, rendezvousHome(k, ["w1", "w3", "w4"]));
    assert.equal(full.pick.candidate.id, full.home);
  });
});

describe("pickers", () => {
  it("round_robin takes the candidates in id order, request after request", () => {
    const scored = ["c", "a", "b"].map((id) => ({ candidate: cand(id), total: id === "c" ? 1 : 0, scores: {} }));
    const picks = [0, 1, 2, 3, 4].map((n) => roundRobin.pick(scored, req(), { ...ctx, sequence: n }).candidate.id);
    assert.deepEqual(picks, ["a", "b", "c", "a", "b"]);
  });
});

describe("the saturation guard", () => {
  const guarded: Profile = {
    name: "t", filters: [], picker: maxScore,
    scorers: [{ scorer: prefixMatch, weight: 1 }, { scorer: inFlight, weight: 1 }],
    saturation: { threshold: 1, gated: ["prefix"] },
  };

  it("zeroes the gated scores of a saturated candidate only", () => {
    const d = schedule(guarded, [cand("a", { sessions: 8 }), cand("b", { sessions: 7 })], req({ prefix: prefix(4, { a: 4, b: 4 }) }), ctx);
    assert.ok(d.ok);
    assert.deepEqual(d.saturated, ["a"]);
    assert.deepEqual(d.ranked.map((s) => [s.candidate.id, s.scores]), [["b", { prefix: 1, in_flight: 0.125 }], ["a", { prefix: 0, in_flight: 0 }]]);
  });

  it("spares nobody when every candidate is saturated: the cache still breaks the tie", () => {
    const d = schedule(guarded, [cand("a", { sessions: 9 }), cand("b", { sessions: 9 })], req({ prefix: prefix(4, { b: 4 }) }), ctx);
    assert.ok(d.ok);
    assert.deepEqual(d.saturated, []);
    assert.equal(d.pick.candidate.id, "b");
  });
});

describe("the routing profiles", () => {
  it("are selectable by every configured name", () => {
    for (const name of SCHEDULER_PROFILES) assert.equal(profileNamed(name).name, name);
    assert.equal(profileNamed("cache-aware", 0.5).saturation?.threshold, 0.5);
    assert.equal(profileNamed("cache-aware").saturation?.threshold, 1);
  });

  // Fleet: w1 holds 9 of the prompt's 10 blocks, w2 the shared system prompt (3), w3 nothing.
  const held = prefix(10, { w1: 9, w2: 3 });
  const fleet = (o: Record<string, Partial<Candidate>> = {}) => ["w1", "w2", "w3"].map((id) => cand(id, o[id]));
  const key = (home: string) => Array.from({ length: 100 }, (_, i) => `c${i}`).find((k) => rendezvousHome(k, ["w1", "w2", "w3"]) === home)!;

  const table: [string, Profile, Candidate[], Partial<RouteRequest>, string][] = [
    ["cache-aware: the worker holding the prompt, though busier", cacheAwareProfile(), fleet({ w1: { sessions: 6 } }), { prefix: held, affinityKey: key("w3") }, "w1"],
    ["cache-aware: a saturated holder loses to load despite its full match", cacheAwareProfile(), fleet({ w1: { sessions: 8 } }), { prefix: prefix(10, { w1: 10 }) }, "w2"],
    ["cache-aware: a holder with one slot free keeps its cache", cacheAwareProfile(), fleet({ w1: { sessions: 7 } }), { prefix: prefix(10, { w1: 10 }) }, "w1"],
    ["cache-aware at 1.5: a holder with a short queue keeps its cache", cacheAwareProfile(1.5), fleet({ w1: { sessions: 11 } }), { prefix: prefix(10, { w1: 10 }) }, "w1"],
    ["cache-aware at 1.5: … not a longer one", cacheAwareProfile(1.5), fleet({ w1: { sessions: 12 } }), { prefix: prefix(10, { w1: 10 }) }, "w2"],
    ["cache-aware: a holder whose KV is nearly full is saturated too", cacheAwareProfile(0.9), fleet({ w1: { kvBytes: 950 * MiB } }), { prefix: prefix(10, { w1: 10 }) }, "w2"],
    ["cache-aware: equal shares go to the conversation's home", cacheAwareProfile(), fleet(), { prefix: prefix(10, { w1: 3, w2: 3, w3: 3 }), affinityKey: key("w2") }, "w2"],
    ["cache-aware: … unless it is more than half its slots busier", cacheAwareProfile(), fleet({ w2: { sessions: 5 } }), { prefix: prefix(10, { w1: 3, w2: 3, w3: 3 }), affinityKey: key("w2") }, "w1"],
    ["cache-aware: a conversation follows its cache away from its home", cacheAwareProfile(), fleet(), { prefix: held, affinityKey: key("w3") }, "w1"],
    ["cache-aware: with nothing cached and no conversation, the least loaded", cacheAwareProfile(), fleet({ w1: { sessions: 1 }, w2: { sessions: 2 } }), {}, "w3"],
    ["seed: lowest 0.6 sessions + 0.4 KV, blind to caches", seedProfile, fleet({ w1: { sessions: 30 }, w2: { kvBytes: 500 * MiB } }), { prefix: held }, "w3"],
    ["least-load: fewest sessions per slot", leastLoadProfile, fleet({ w1: { sessions: 3 }, w2: { sessions: 1, slotsTotal: 2 }, w3: { sessions: 2 } }), { prefix: held }, "w3"],
    ["round-robin: in turn, blind to everything", roundRobinProfile, fleet({ w1: { sessions: 50 } }), { prefix: held }, "w1"],
  ];
  for (const [name, profile, cands, r, expected] of table) {
    it(name, () => assert.equal(picked(schedule(profile, cands, req(r), ctx)), expected));
  }

  it("give the same decision for the same inputs, whatever the order of the snapshot", () => {
    const r = req({ prefix: held, affinityKey: "conversation-7" });
    const cands = fleet({ w1: { sessions: 2 }, w3: { kvBytes: 100 * MiB } });
    const a = schedule(cacheAwareProfile(), cands, r, ctx);
    const b = schedule(cacheAwareProfile(), [...cands].reverse(), r, { nowMs: 99, rng: createRng(7) });
    assert.ok(a.ok && b.ok);
    assert.equal(a.pick.candidate.id, b.pick.candidate.id);
    assert.equal(a.home, b.home);
    assert.deepEqual(a.ranked.map((s) => [s.candidate.id, s.total]), b.ranked.map((s) => [s.candidate.id, s.total]));
  });

  it("explain a cache-aware decision: every score of the pick, the ranking, the home and who was saturated", () => {
    const d = schedule(cacheAwareProfile(), fleet({ w2: { sessions: 12 } }), req({ prefix: prefix(4, { w1: 2, w2: 4 }), affinityKey: key("w1") }), ctx);
    assert.ok(d.ok);
    assert.equal(d.pick.candidate.id, "w1");
    assert.deepEqual(d.pick.scores, { prefix: 0.5, affinity: 1, in_flight: 1, queue: 1, kv: 1 });
    assert.equal(d.pick.total, (3 * 0.5 + 0.5 + 1 + 0.5 + 0.5) / 5.5);
    assert.equal(d.home, "w1");
    assert.deepEqual(d.saturated, ["w2"]);
    assert.deepEqual(d.ranked.map((s) => s.candidate.id), ["w1", "w3", "w2"]);
    assert.equal(d.runnerUp?.candidate.id, "w3");
  });
});

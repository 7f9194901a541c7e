import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/common/clock.js";
import { createRng } from "../../src/common/rng.js";
import { AFFINITY_WEIGHT, seedProfile, withAffinity } from "../../src/coordinator/scheduler/profiles.js";
import { schedule } from "../../src/coordinator/scheduler/schedule.js";
import { sessionAffinity } from "../../src/coordinator/scheduler/scorers.js";
import type { Candidate, RouteRequest } from "../../src/coordinator/scheduler/types.js";
import { SessionAffinity } from "../../src/coordinator/session-affinity.js";
import { KeptSequences } from "../../src/worker/kept-sequences.js";

describe("kept sequences (a worker's conversations between turns)", () => {
  it("keeps one sequence per conversation and one conversation per slot", () => {
    const k = new KeptSequences();
    assert.deepEqual(k.keep("a", 0, 100, 1), []);
    assert.deepEqual(k.keep("b", 1, 50, 2), []);
    assert.equal(k.count, 2);
    assert.equal(k.tokens, 150);
    // a's next turn ended on slot 2: its old slot no longer keeps it
    assert.deepEqual(k.keep("a", 2, 120, 3), []);
    assert.equal(k.atSlot(0), undefined);
    assert.equal(k.get("a")!.slotIndex, 2);
    assert.equal(k.tokens, 170);
    // c ends on b's slot: b is replaced
    assert.deepEqual(k.keep("c", 1, 10, 4).map((e) => e.conversationId), ["b"]);
    assert.equal(k.get("b"), undefined);
    assert.deepEqual(k.all().map((e) => e.conversationId), ["a", "c"]);
    assert.equal(k.tokens, 130);
  });

  it("orders by recency: least recently used first, skipping the conversation being served", () => {
    const k = new KeptSequences();
    k.keep("a", 0, 1, 1);
    k.keep("b", 1, 1, 2);
    k.keep("c", 2, 1, 3);
    k.keep("a", 0, 2, 4);
    assert.equal(k.leastRecentlyUsed()!.conversationId, "b");
    assert.equal(k.leastRecentlyUsed("b")!.conversationId, "c");
    assert.equal(k.remove(k.get("b")!), true);
    assert.equal(k.remove({ conversationId: "b", slotIndex: 1, tokens: 1, lastUsedMs: 2 }), false, "removing twice is a no-op");
    assert.equal(k.tokens, 3);
  });

  it("ranks free slots: the conversation's own, then empty ones, then kept ones LRU first", () => {
    const k = new KeptSequences();
    k.keep("old", 0, 1, 1);
    k.keep("new", 1, 1, 2);
    k.keep("mine", 2, 1, 3);
    const rank = k.rankFor("mine");
    const order = [0, 1, 2, 3].sort((x, y) => rank(y) - rank(x));
    assert.deepEqual(order, [2, 3, 0, 1]);
    const other = k.rankFor(undefined);
    assert.deepEqual([0, 1, 2, 3].sort((x, y) => other(y) - other(x)), [3, 0, 1, 2]);
  });

  it("expires entries idle past the TTL", () => {
    const k = new KeptSequences();
    k.keep("a", 0, 1, 1000);
    k.keep("b", 1, 1, 5000);
    assert.deepEqual(k.expired(6001, 5000).map((e) => e.conversationId), ["a"]);
    assert.deepEqual(k.expired(6000, 5000), []);
  });
});

describe("session affinity at the coordinator", () => {
  it("remembers the worker of a conversation's last turn, for the TTL", () => {
    const clock = new ManualClock();
    const a = new SessionAffinity(clock, 1000);
    a.record("c1", "w1");
    assert.equal(a.workerOf("c1"), "w1");
    a.record("c1", "w2");
    assert.equal(a.workerOf("c1"), "w2");
    clock.advance(1001);
    assert.equal(a.workerOf("c1"), undefined);
    assert.equal(a.size, 0);
  });

  it("is bounded, forgetting the least recently recorded first", () => {
    const a = new SessionAffinity(new ManualClock(), 1000, 2);
    a.record("x", "w1");
    a.record("y", "w1");
    a.record("x", "w2");
    a.record("z", "w3");
    assert.equal(a.workerOf("y"), undefined);
    assert.equal(a.workerOf("x"), "w2");
    assert.equal(a.workerOf("z"), "w3");
  });

  const cand = (id: string, o: Partial<Candidate> = {}): Candidate => ({
    id, url: `http://${id}`, model: "m", fresh: true, healthy: true, draining: false, sessions: 0, maxSessions: 10,
    kvBytes: 0, maxKvBytes: 1e9, maxSessionKvBytes: 1e8, kvBytesPerToken: 100, contextSize: 2048, waiting: 0, slotsTotal: 4, ...o,
  });
  const req = (o: Partial<RouteRequest> = {}): RouteRequest => ({ model: "m", tokens: 100, exclude: new Set(), ...o });
  const ctx = { nowMs: 0, rng: createRng(1) };

  it("scores 1 for the worker holding the conversation and 0 for the others", () => {
    assert.equal(sessionAffinity.score(cand("a"), req({ affinity: "a" })), 1);
    assert.equal(sessionAffinity.score(cand("b"), req({ affinity: "a" })), 0);
    assert.equal(sessionAffinity.score(cand("a"), req()), 0);
  });

  it("sends a conversation to its worker even when that worker is the busiest", () => {
    const p = withAffinity(seedProfile);
    assert.equal(p.name, "seed+affinity");
    assert.equal(p.scorers.at(-1)!.weight, AFFINITY_WEIGHT);
    const fleet = [cand("a", { sessions: 9 }), cand("b")];
    const d = schedule(p, fleet, req({ affinity: "a" }), ctx);
    assert.ok(d.ok);
    assert.equal(d.pick.candidate.id, "a");
    assert.equal(d.pick.scores.affinity, 1);
    assert.equal(withAffinity(seedProfile), p, "the derived profile is built once");
  });

  it("moves a conversation whose worker is full, gone or already tried", () => {
    const p = withAffinity(seedProfile);
    for (const a of [cand("a", { sessions: 10 }), cand("a", { fresh: false }), cand("a", { healthy: false })]) {
      const d = schedule(p, [a, cand("b")], req({ affinity: "a" }), ctx);
      assert.ok(d.ok);
      assert.equal(d.pick.candidate.id, "b");
    }
    const d = schedule(p, [cand("a"), cand("b")], req({ affinity: "a", exclude: new Set(["a"]) }), ctx);
    assert.ok(d.ok && d.pick.candidate.id === "b");
  });
});

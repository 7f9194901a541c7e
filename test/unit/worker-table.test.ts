import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/common/clock.js";
import { WorkerTable } from "../../src/coordinator/fleet/worker-table.js";
import { SessionTracker } from "../../src/coordinator/fleet/session-tracker.js";
import type { Heartbeat } from "../../src/protocol/heartbeat.js";
import { parseHeartbeat } from "../../src/protocol/heartbeat.js";

function hb(id: string, o: { model?: string; aliases?: string[]; draining?: boolean; interval?: number; maxSessions?: number } = {}): Heartbeat {
  return parseHeartbeat({
    worker_id: id, worker_url: `http://127.0.0.1:1/${id}`, timestamp: 0, interval_ms: o.interval ?? 1000,
    health: {
      alive: true, active_sessions: 0, kv_cache_bytes: 0, draining: o.draining ?? false,
      model: { id: o.model ?? "m", aliases: o.aliases ?? [], context_size: 2048, kv_bytes_per_token: 640 },
      limits: { max_sessions: o.maxSessions ?? 10, max_session_kv_bytes: 1000, max_kv_bytes: 5000 },
    },
  });
}

describe("WorkerTable", () => {
  it("keeps a worker fresh for 3 of its intervals, then expires it", () => {
    const clock = new ManualClock();
    const t = new WorkerTable(clock, 10_000);
    const left: string[] = [];
    t.onChange((id, ev) => ev === "left" && left.push(id));
    t.upsert(hb("a", { interval: 1000 }));
    assert.equal(t.capacity().routable, 1);
    clock.advance(3000);
    t.sweep();
    assert.equal(t.isFresh(t.get("a")!), true);
    assert.equal(t.capacity().routable, 1);
    clock.advance(1);
    t.sweep();
    assert.equal(t.isFresh(t.get("a")!), false);
    assert.equal(t.capacity().routable, 0);
    assert.deepEqual(left, ["a"]);
    t.upsert(hb("a"));
    assert.equal(t.capacity().routable, 1, "a new beat brings it back");
  });

  it("takes a worker out at once on a connection failure; a heartbeat lets one probe through", () => {
    const clock = new ManualClock();
    const t = new WorkerTable(clock, 1000);
    t.upsert(hb("a"));
    t.recordFault("a", "connect");
    assert.equal(t.capacity().routable, 0);
    assert.equal(t.isRoutable(t.get("a")!), false);
    t.upsert(hb("a"));
    assert.equal(t.get("a")!.breaker.state(clock.now()), "half_open");
    assert.equal(t.capacity().routable, 1);
    t.dispatched("a");
    assert.equal(t.get("a")!.breaker.allows(clock.now()), false, "one probe at a time");
    t.recordSuccess("a");
    assert.equal(t.get("a")!.breaker.state(clock.now()), "closed");
  });

  it("reopens the worker to routing when a breaker's cooldown ends", () => {
    const clock = new ManualClock();
    const t = new WorkerTable(clock, 60_000);
    t.upsert(hb("a", { interval: 60_000 }));
    t.recordFault("a", "timeout");
    assert.equal(t.capacity().routable, 0);
    clock.advance(1000);
    t.sweep();
    assert.equal(t.capacity().routable, 1);
  });

  it("aggregates capacity over routable workers, per model", () => {
    const t = new WorkerTable(new ManualClock(), 1000);
    t.upsert(hb("a", { model: "x", maxSessions: 10 }));
    t.upsert(hb("b", { model: "x", maxSessions: 20 }));
    t.upsert(hb("c", { model: "y", aliases: ["why"], maxSessions: 5 }));
    t.upsert(hb("d", { model: "y", draining: true }));
    assert.deepEqual(t.capacity(), { routable: 3, maxSessions: 35, maxKvBytes: 15000, maxKvBytesPerToken: 640, maxContextSize: 2048 });
    assert.equal(t.capacity("x").maxSessions, 30);
    assert.equal(t.capacity("y").routable, 1);
    assert.deepEqual(t.models(), ["x", "y"]);
    assert.equal(t.modelFor("why"), "y");
    assert.equal(t.modelFor("zzz"), undefined);
  });

  it("forgets long-expired workers", () => {
    const clock = new ManualClock();
    const t = new WorkerTable(clock, 1000);
    t.upsert(hb("a", { interval: 100 }));
    clock.advance(100 * 31);
    t.sweep();
    assert.equal(t.get("a"), undefined);
  });
});

describe("SessionTracker", () => {
  it("counts load from dispatch and releases once", () => {
    const s = new SessionTracker();
    const a = s.open("r1", "w1", 100);
    const b = s.open("r2", "w1", 50);
    assert.equal(s.count, 2);
    assert.equal(s.kvReservedBytes, 150);
    assert.deepEqual(s.load("w1"), { sessions: 2, kvBytes: 150 });
    a.trueUp(30);
    assert.equal(s.kvReservedBytes, 80);
    b.moveTo("w2");
    assert.deepEqual(s.load("w1"), { sessions: 1, kvBytes: 30 });
    assert.deepEqual(s.load("w2"), { sessions: 1, kvBytes: 50 });
    a.release();
    a.release();
    b.release();
    assert.equal(s.count, 0);
    assert.equal(s.kvReservedBytes, 0);
    assert.deepEqual(s.load("w1"), { sessions: 0, kvBytes: 0 });
    b.trueUp(999);
    assert.equal(s.kvReservedBytes, 0, "a released lease changes nothing");
  });

  it("stays consistent under many interleaved leases", () => {
    const s = new SessionTracker();
    const leases = Array.from({ length: 500 }, (_, i) => s.open(`r${i}`, `w${i % 7}`, i));
    leases.forEach((l, i) => (i % 3 === 0 ? l.moveTo(`w${(i + 1) % 7}`) : l.trueUp(i * 2)));
    for (const l of leases.reverse()) l.release();
    assert.equal(s.count, 0);
    assert.equal(s.kvReservedBytes, 0);
  });

  describe("a worker's load for scheduling: own live sessions plus the others the last heartbeat counted", () => {
    const beat = (sessions: number, kv: number) => {
      const b = hb("a");
      return { ...b, health: { ...b.health, active_sessions: sessions, kv_reserved_bytes: kv } };
    };
    // [name, heartbeat (sessions, kv), own load when it arrived, own load now, expected load]
    const cases: [string, [number, number], [number, number], [number, number], [number, number]][] = [
      ["a burst that just ended counts nothing, though the beat still shows it", [6, 600], [6, 600], [0, 0], [0, 0]],
      ["own sessions dispatched since the beat count at once", [2, 200], [2, 200], [5, 500], [5, 500]],
      ["another coordinator's sessions count until the next beat", [7, 700], [3, 300], [3, 300], [7, 700]],
      ["both: others from the beat, own from now", [7, 700], [3, 300], [0, 0], [4, 400]],
      ["a beat that lags own dispatches never counts negative others", [1, 100], [4, 400], [4, 400], [4, 400]],
    ];
    for (const [name, [hs, hk], [as, ak], [ns, nk], [ws, wk]] of cases) {
      it(name, () => {
        const t = new WorkerTable(new ManualClock(), 1000);
        const e = t.upsert(beat(hs, hk), { sessions: as, kvBytes: ak });
        assert.deepEqual(t.load(e, { sessions: ns, kvBytes: nk }), { sessions: ws, kvBytes: wk });
      });
    }

    it("copies the load it is given: later changes to the tracker's entry do not move the beat's mark", () => {
      const t = new WorkerTable(new ManualClock(), 1000);
      const s = new SessionTracker();
      const lease = s.open("r1", "a", 100);
      const e = t.upsert(beat(1, 100), s.load("a"));
      s.open("r2", "a", 100);
      assert.deepEqual(t.load(e, s.load("a")), { sessions: 2, kvBytes: 200 });
      lease.release();
      assert.deepEqual(t.load(e, s.load("a")), { sessions: 1, kvBytes: 100 });
    });
  });
});

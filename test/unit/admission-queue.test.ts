import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/common/clock.js";
import { ManualTimers } from "../../src/common/timers.js";
import { AdmissionQueue, type QueueTicket } from "../../src/coordinator/admission/admission-queue.js";
import { DrainRate } from "../../src/coordinator/admission/drain-rate.js";
import { ServingError } from "../../src/protocol/serving-error.js";

/**
 * The admission queue driven the way the pipeline drives it: each waiter loops on `turn()` and
 * checks a capacity counter; the test frees capacity and kicks the queue.
 */
function harness(o: { maxSize?: number; timeoutMs?: number; statusIntervalMs?: number } = {}) {
  const clock = new ManualClock();
  const timers = new ManualTimers(clock);
  const queue = new AdmissionQueue({ maxSize: o.maxSize ?? 10, timeoutMs: o.timeoutMs ?? 5000, clock, timers, statusIntervalMs: o.statusIntervalMs ?? 1000 });
  let free = 0;
  const admitted: string[] = [];
  const failed: Record<string, string> = {};
  const positions: Record<string, number[]> = {};
  function wait(name: string, priority = 0, ac = new AbortController(), listen = false): { ticket: QueueTicket; done: Promise<void>; ac: AbortController } {
    const ticket = queue.enqueue({ priority, signal: ac.signal, ...(listen ? { onPosition: (p: number) => (positions[name] ??= []).push(p) } : {}) });
    const done = (async () => {
      try {
        for (;;) {
          await ticket.turn();
          if (ticket.isFirst && free > 0) {
            free--;
            ticket.leave();
            admitted.push(name);
            return;
          }
        }
      } catch (err) {
        failed[name] = (err as ServingError).code;
      }
    })();
    return { ticket, done, ac };
  }
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const release = async (n = 1) => {
    free += n;
    queue.kick();
    await settle();
  };
  return { clock, timers, queue, wait, release, settle, admitted, failed, positions };
}

describe("the admission queue", () => {
  it("admits by priority (lower first), then arrival", async () => {
    const h = harness();
    h.wait("a", 0);
    h.wait("b", 5);
    h.wait("c", -1);
    h.wait("d", 0);
    h.wait("e", -1);
    await h.settle();
    assert.deepEqual(h.admitted, []);
    for (let i = 0; i < 5; i++) await h.release();
    assert.deepEqual(h.admitted, ["c", "e", "a", "d", "b"]);
    assert.equal(h.queue.size, 0);
  });

  it("wakes one waiter per freed place, and never more than capacity", async () => {
    const h = harness();
    for (const n of ["a", "b", "c"]) h.wait(n);
    await h.settle();
    h.queue.kick();
    await h.settle();
    assert.deepEqual(h.admitted, [], "a kick without capacity admits nobody");
    await h.release(2);
    assert.deepEqual(h.admitted, ["a", "b"], "leaving wakes the next while capacity lasts");
    assert.equal(h.queue.size, 1);
  });

  it("refuses beyond its size with queue_full and a Retry-After from the drain rate", async () => {
    const h = harness({ maxSize: 2, timeoutMs: 30_000 });
    h.wait("a");
    h.wait("b");
    assert.throws(() => h.wait("c"), (e: ServingError) => e.code === "queue_full" && e.retryAfterS === 30, "no drain seen yet: the queue timeout");
    // Two leave 500 ms apart: a drain of about 2 per second (2.05: the last departure counts in
    // full); a third arrival waits behind 2 → ceil(3 / 2.05) = 2 s.
    await h.release();
    h.clock.advance(500);
    await h.release();
    h.wait("c");
    h.wait("d");
    assert.throws(() => h.wait("e"), (e: ServingError) => e.code === "queue_full" && e.retryAfterS === 2);
    assert.equal(h.queue.snapshot().drain_per_s, Math.round((1000 * 0.1) / (1 - Math.exp(-0.05))) / 1000);
  });

  it("answers queue_timeout to a request still waiting after the timeout, and forgets it", async () => {
    const h = harness({ timeoutMs: 5000 });
    h.wait("a");
    h.clock.advance(1000);
    h.wait("b");
    await h.settle();
    h.timers.advance(4000);
    await h.settle();
    assert.deepEqual(h.failed, { a: "queue_timeout" });
    assert.equal(h.queue.size, 1);
    h.timers.advance(999);
    await h.settle();
    assert.deepEqual(Object.keys(h.failed), ["a"]);
    h.timers.advance(1);
    await h.settle();
    assert.deepEqual(h.failed, { a: "queue_timeout", b: "queue_timeout" });
    assert.equal(h.queue.size, 0);
    assert.equal(h.timers.count, 0, "no timer left behind");
  });

  it("lets a client that disconnects leave at once, and the next in line moves up", async () => {
    const h = harness();
    const a = h.wait("a", 0, new AbortController(), true);
    h.wait("b", 0, new AbortController(), true);
    await h.settle();
    a.ac.abort();
    await h.settle();
    assert.deepEqual(h.failed, { a: "client_closed" });
    assert.equal(h.queue.size, 1);
    h.timers.advance(1000);
    assert.deepEqual(h.positions, { a: [1], b: [2, 1] });
    await h.release();
    assert.deepEqual(h.admitted, ["b"]);
  });

  it("tells listening waiters their position at once and every status interval", async () => {
    const h = harness({ statusIntervalMs: 1000 });
    h.wait("a", 0, new AbortController(), true);
    h.wait("b", 0, new AbortController(), true);
    h.wait("c", -1, new AbortController(), true);
    assert.deepEqual(h.positions, { a: [1], b: [2], c: [1] });
    h.timers.advance(1000);
    assert.deepEqual(h.positions, { a: [1, 2], b: [2, 3], c: [1, 1] });
    await h.release();
    h.timers.advance(1000);
    assert.deepEqual(h.positions, { a: [1, 2, 1], b: [2, 3, 2], c: [1, 1] });
  });

  it("lets the first in line look at once, so a request that becomes first does not wait for a kick", async () => {
    const h = harness();
    await h.release(1); // capacity is free, nobody waits yet
    h.wait("a");
    await h.settle();
    assert.deepEqual(h.admitted, ["a"]);
  });

  it("reports its state for operators", async () => {
    const h = harness({ maxSize: 4, timeoutMs: 2000 });
    h.wait("a", 1);
    h.clock.advance(300);
    h.wait("b", 1);
    h.wait("c", -2);
    assert.deepEqual(h.queue.snapshot(), {
      size: 3, max_size: 4, timeout_ms: 2000, drain_per_s: 0, oldest_wait_ms: 300, retry_after_s: 2, by_priority: { "1": 2, "-2": 1 },
    });
  });

  it("is off at size 0", () => {
    const h = harness({ maxSize: 0 });
    assert.equal(h.queue.enabled, false);
  });
});

describe("the drain rate", () => {
  it("reads a steady rate right from the second event and forgets a quiet past", () => {
    const r = new DrainRate(10_000);
    assert.equal(r.perSecond(0), 0);
    r.record(0);
    assert.equal(r.perSecond(0), 0, "one event tells no rate");
    for (let t = 250; t <= 2000; t += 250) r.record(t);
    // Read at an event, the estimate counts that event in full: 0.1 / (1 − e^−0.025) = 4.05 at 4/s.
    const atEvent = 0.1 / (1 - Math.exp(-0.025));
    assert.ok(Math.abs(r.perSecond(2000) - atEvent) < 1e-9, String(r.perSecond(2000)));
    for (let t = 2250; t <= 60_000; t += 250) r.record(t);
    const steady = r.perSecond(60_000);
    assert.ok(Math.abs(steady - atEvent) < 1e-3, String(steady));
    assert.ok(Math.abs(r.perSecond(60_125) - 4) < 0.03, "half-way between events it reads the rate");
    assert.ok(Math.abs(r.perSecond(90_000) - steady * Math.exp(-3)) < 1e-3, "30 quiet seconds decay it by e^-3");
  });
});

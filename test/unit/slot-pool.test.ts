import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SlotPool } from "../../src/worker/slot-pool.js";

describe("SlotPool", () => {
  it("hands out free slots, then queues waiters first-in first-out", async () => {
    const pool = new SlotPool(2);
    const never = new AbortController().signal;
    const a = await pool.acquire(never);
    const b = await pool.acquire(never);
    assert.equal(pool.busy, 2);
    const order: string[] = [];
    const c = pool.acquire(never).then((l) => (order.push("c"), l));
    const d = pool.acquire(never).then((l) => (order.push("d"), l));
    assert.equal(pool.waiting, 2);
    a.release();
    const lc = await c;
    assert.equal(lc.index, a.index);
    b.release();
    await d;
    assert.deepEqual(order, ["c", "d"]);
    assert.equal(pool.waiting, 0);
  });

  it("releases a lease once however often release() is called", async () => {
    const pool = new SlotPool(1);
    const l = await pool.acquire(new AbortController().signal);
    l.release();
    l.release();
    assert.equal(pool.busy, 0);
    await pool.acquire(new AbortController().signal);
    l.release();
    assert.equal(pool.busy, 1, "a stale lease cannot free another holder's slot");
  });

  it("drops an aborted waiter from the queue at once", async () => {
    const pool = new SlotPool(1);
    const held = await pool.acquire(new AbortController().signal);
    const ac = new AbortController();
    const waiting = pool.acquire(ac.signal);
    ac.abort(new Error("gone"));
    await assert.rejects(waiting, /gone/);
    assert.equal(pool.waiting, 0);
    held.release();
    assert.equal(pool.busy, 0, "the slot is not handed to the aborted waiter");
  });

  it("prefers the free slot the caller ranks highest", async () => {
    const pool = new SlotPool(4);
    const l = await pool.acquire(new AbortController().signal, (i) => (i === 2 ? 10 : 0));
    assert.equal(l.index, 2);
  });
});

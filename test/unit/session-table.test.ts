import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/common/clock.js";
import { createLogger } from "../../src/common/logger.js";
import { createSimEngine } from "../../src/engine/sim-engine.js";
import { NO_FAULTS } from "../../src/engine/sim-faults.js";
import { VirtualSleeper } from "../../src/engine/sim-sleeper.js";
import { SessionTable, type EndReason } from "../../src/worker/session-table.js";
import type { Session } from "../../src/worker/session.js";

/**
 * The worker's session sweep: a session prefilled and never claimed by a decode (its coordinator
 * timed out on the prefill while this worker was frozen, or died) is freed after the claim timeout,
 * slot and KV reservation with it; idle sessions otherwise go at the TTL; decoding ones never.
 */
const LIMITS = { maxSessions: 10, maxSessionKvBytes: 1e9, maxKvBytes: 1e10, ttlMs: 300_000, claimTimeoutMs: 30_000 };

function setup() {
  const clock = new ManualClock();
  const engine = createSimEngine({
    modelId: "sim", contextSize: 4096, parallel: 2, kvBytesPerToken: 1000, tokenChars: 0,
    timing: { prefillBaseMs: 0, prefillPerTokenMs: 0, itlMs: 0, itlPerSequenceMs: 0, jitter: 0, slowFactor: 1 },
    faults: NO_FAULTS, seed: 1, clock, sleeper: new VirtualSleeper(clock), hooks: { crash: () => {}, freeze: () => {} },
  });
  const table = new SessionTable(engine, LIMITS, clock, createLogger("worker", "silent"));
  const ended: [string, EndReason][] = [];
  table.onEnd = (s, reason) => ended.push([s.id, reason]);
  return { clock, table, ended };
}

/** A session as prefill leaves it: admitted, holding a slot, in `state`. */
async function sessionIn(table: SessionTable, id: string, state: Session["state"], nowMs: number): Promise<Session> {
  const s = table.admit(id, `req-${id}`, 10, 90, {});
  s.slot = await table.acquireSlot(s, [1, 2, 3]);
  s.state = state;
  s.lastActiveMs = nowMs;
  return s;
}

describe("the worker's session sweep", () => {
  it("frees a prefilled session no decode claimed within the claim timeout, with its slot and KV", async () => {
    const { clock, table, ended } = setup();
    await sessionIn(table, "orphan", "ready", 0);
    assert.equal(table.slots.busy, 1);
    assert.equal(table.reservedKvBytes, 100 * 1000);
    clock.advance(30_000);
    assert.equal(table.sweep(), 0, "not before the timeout");
    clock.advance(1);
    assert.equal(table.sweep(), 1);
    assert.deepEqual(ended, [["orphan", "unclaimed"]]);
    assert.equal(table.count, 0);
    assert.equal(table.reservedKvBytes, 0);
    // The slot is released once its sequence is cleared.
    await new Promise((r) => setImmediate(r));
    assert.equal(table.slots.busy, 0);
  });

  const cases: [string, Session["state"], number, EndReason | undefined][] = [
    ["a decoding session is never swept, however long", "decoding", 10 * LIMITS.ttlMs, undefined],
    ["a prefilling session waits for the TTL, not the claim timeout", "prefilling", LIMITS.claimTimeoutMs + 1, undefined],
    ["a prefilling session goes at the TTL", "prefilling", LIMITS.ttlMs + 1, "ttl"],
    ["a ready session goes at the claim timeout", "ready", LIMITS.claimTimeoutMs + 1, "unclaimed"],
  ];
  for (const [name, state, idleMs, want] of cases) {
    it(name, async () => {
      const { clock, table, ended } = setup();
      await sessionIn(table, "s", state, 0);
      clock.advance(idleMs);
      table.sweep();
      assert.deepEqual(ended, want === undefined ? [] : [["s", want]]);
    });
  }
});

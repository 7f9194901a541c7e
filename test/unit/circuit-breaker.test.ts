import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BASE_COOLDOWN_MS, CircuitBreaker, MAX_COOLDOWN_MS } from "../../src/coordinator/fleet/circuit-breaker.js";

describe("CircuitBreaker", () => {
  it("opens at once on a connection failure or a timeout", () => {
    for (const kind of ["connect", "timeout"] as const) {
      const b = new CircuitBreaker();
      b.fault(kind, 0);
      assert.equal(b.state(0), "open");
      assert.equal(b.allows(0), false);
    }
  });

  it("opens after three 5xx or broken streams in a row, and a success in between resets the count", () => {
    const b = new CircuitBreaker();
    b.fault("status", 0);
    b.fault("stream", 0);
    b.success(0);
    b.fault("status", 0);
    b.fault("status", 0);
    assert.equal(b.state(0), "closed");
    b.fault("protocol", 0);
    assert.equal(b.state(0), "open");
    assert.equal(b.opens, 1);
  });

  it("half-opens after the cooldown and lets exactly one probe through", () => {
    const b = new CircuitBreaker();
    b.fault("connect", 0);
    assert.equal(b.state(BASE_COOLDOWN_MS - 1), "open");
    assert.equal(b.state(BASE_COOLDOWN_MS), "half_open");
    assert.equal(b.allows(BASE_COOLDOWN_MS), true);
    b.dispatched(BASE_COOLDOWN_MS);
    assert.equal(b.allows(BASE_COOLDOWN_MS), false);
    b.success(BASE_COOLDOWN_MS + 5);
    assert.equal(b.state(BASE_COOLDOWN_MS + 5), "closed");
  });

  it("doubles the cooldown when the probe fails, up to the maximum", () => {
    const b = new CircuitBreaker();
    let t = 0;
    b.fault("connect", t);
    const cooldowns: number[] = [];
    for (let i = 0; i < 8; i++) {
      let wait = 0;
      while (b.state(t + wait) === "open") wait += 100;
      cooldowns.push(wait);
      t += wait;
      b.dispatched(t);
      b.fault("timeout", t);
    }
    assert.deepEqual(cooldowns, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000].map((x) => Math.min(x, MAX_COOLDOWN_MS)));
  });

  it("lets a heartbeat bring an open breaker to half-open at once", () => {
    const b = new CircuitBreaker();
    b.fault("connect", 0);
    b.heartbeat(10);
    assert.equal(b.state(10), "half_open");
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RestartBackoff } from "../../src/cli/restart-backoff.js";

describe("RestartBackoff", () => {
  it("doubles the delay from 500 ms to 30 s for a worker that keeps dying at once", () => {
    const b = new RestartBackoff();
    let now = 0;
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = now;
      now += 100; // dies 100 ms after its start
      const d = b.delayAfterCrash(started, now);
      delays.push(d);
      now += d;
    }
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
  });

  it("starts over from 500 ms after a worker ran for the stable period", () => {
    const b = new RestartBackoff({ baseMs: 500, maxMs: 30_000, stableMs: 60_000 });
    assert.equal(b.delayAfterCrash(0, 10), 500);
    assert.equal(b.delayAfterCrash(1000, 1010), 1000);
    assert.equal(b.delayAfterCrash(2000, 2010), 2000);
    assert.equal(b.delayAfterCrash(5000, 5000 + 59_999), 4000, "not stable yet");
    assert.equal(b.delayAfterCrash(70_000, 70_000 + 60_000), 500, "stable: reset");
    assert.equal(b.delayAfterCrash(131_000, 131_010), 1000);
  });
});

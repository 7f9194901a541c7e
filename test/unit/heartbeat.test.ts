import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseHeartbeat } from "../../src/protocol/heartbeat.js";
import { ServingError } from "../../src/protocol/serving-error.js";

describe("heartbeat parsing", () => {
  it("accepts the seed's payload and fills the added fields with the seed's limits", () => {
    const hb = parseHeartbeat({
      worker_id: "worker-1", worker_url: "http://localhost:3001", timestamp: 123,
      health: { alive: true, active_sessions: 2, kv_cache_bytes: 1024 },
    });
    assert.equal(hb.worker_id, "worker-1");
    assert.equal(hb.worker_url, "http://localhost:3001");
    assert.equal(hb.interval_ms, undefined);
    assert.deepEqual(hb.health.limits, { max_sessions: 100, max_session_kv_bytes: 512 * 1024 ** 2, max_kv_bytes: 8 * 1024 ** 3 });
    assert.equal(hb.health.model.id, "default");
    assert.equal(hb.health.active_sessions, 2);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ["no worker_id", { worker_url: "http://a", health: {} }, "worker_id"],
    ["a worker_id with spaces", { worker_id: "a b", worker_url: "http://a", health: {} }, "worker_id"],
    ["a worker_url that is not http", { worker_id: "a", worker_url: "file:///etc/passwd", health: {} }, "worker_url"],
    ["a worker_url that is not a URL", { worker_id: "a", worker_url: "nope", health: {} }, "worker_url"],
    ["no health", { worker_id: "a", worker_url: "http://a" }, "health"],
    ["negative sessions", { worker_id: "a", worker_url: "http://a", health: { active_sessions: -1, kv_cache_bytes: 0 } }, "active_sessions"],
    ["non-numeric KV", { worker_id: "a", worker_url: "http://a", health: { active_sessions: 0, kv_cache_bytes: "lots" } }, "kv_cache_bytes"],
  ];
  for (const [name, body, param] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseHeartbeat(body), (e: unknown) => e instanceof ServingError && e.param === param);
    });
  }
});

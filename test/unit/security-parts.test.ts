import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter } from "../../src/coordinator/admission/rate-limiter.js";
import { coordinatorRouteClass } from "../../src/coordinator/routes/route-class.js";
import { matchesAny, secretId, secretsEqual } from "../../src/common/secret.js";

describe("secret comparison", () => {
  it("compares equal and unequal secrets of any length", () => {
    assert.equal(secretsEqual("correct horse battery", "correct horse battery"), true);
    assert.equal(secretsEqual("correct horse battery", "correct horse batterz"), false);
    assert.equal(secretsEqual("short", "a much longer secret"), false);
    assert.equal(secretsEqual("", ""), true);
  });

  it("finds which of several keys matched", () => {
    assert.equal(matchesAny("b".repeat(16), ["a".repeat(16), "b".repeat(16)]), 1);
    assert.equal(matchesAny("c".repeat(16), ["a".repeat(16), "b".repeat(16)]), -1);
  });

  it("names a secret without revealing it", () => {
    const id = secretId("sk-very-secret-key-123");
    assert.match(id, /^[0-9a-f]{12}$/);
    assert.equal(id, secretId("sk-very-secret-key-123"));
    assert.ok(!"sk-very-secret-key-123".includes(id));
  });
});

describe("route classes", () => {
  const table: [string, string][] = [
    ["/coordinator/health", "open"], ["/metrics", "open"], ["/coordinator/health/heartbeat", "cluster"],
    ["/coordinator/infer", "client"], ["/coordinator/workers/:id/drain", "admin"], ["/coordinator/workers/:id/undrain", "admin"],
    ["/coordinator/health/prefix-index", "admin"], ["/coordinator/health/routing", "admin"], ["/v1/chat/completions", "client"], ["/coordinator/health/workers", "client"],
    // A browser opens the page without headers; the page holds no data and sends its key to the data route.
    ["/dashboard", "open"], ["/dashboard/api/state", "client"],
  ];
  for (const [path, cls] of table) it(`${path} is ${cls}`, () => assert.equal(coordinatorRouteClass(path), cls));
});

describe("RateLimiter", () => {
  it("admits a minute's requests, then answers with the wait until the next", () => {
    const rl = new RateLimiter({ requestsPerMinute: 3, tokensPerMinute: 0 });
    for (let i = 0; i < 3; i++) assert.deepEqual(rl.take("k", 10, 0), { ok: true });
    assert.deepEqual(rl.take("k", 10, 0), { ok: false, limit: "requests", retryAfterS: 20 });
    // One request refills every 20 s.
    assert.deepEqual(rl.take("k", 10, 10_000), { ok: false, limit: "requests", retryAfterS: 10 });
    assert.deepEqual(rl.take("k", 10, 20_000), { ok: true });
    assert.deepEqual(rl.take("other", 10, 20_000), { ok: true }, "clients have their own buckets");
  });

  it("meters tokens per minute", () => {
    const rl = new RateLimiter({ requestsPerMinute: 0, tokensPerMinute: 600 });
    assert.deepEqual(rl.take("k", 500, 0), { ok: true });
    assert.deepEqual(rl.take("k", 200, 0), { ok: false, limit: "tokens", retryAfterS: 10 });
    assert.deepEqual(rl.take("k", 200, 10_000), { ok: true });
  });

  it("lets a request bigger than a minute's allowance through once the bucket is full", () => {
    const rl = new RateLimiter({ requestsPerMinute: 0, tokensPerMinute: 100 });
    assert.deepEqual(rl.take("k", 5000, 0), { ok: true });
    assert.equal(rl.take("k", 5000, 30_000).ok, false);
    assert.deepEqual(rl.take("k", 5000, 60_000), { ok: true });
  });

  it("is off when both limits are 0", () => {
    const rl = new RateLimiter({ requestsPerMinute: 0, tokensPerMinute: 0 });
    for (let i = 0; i < 1000; i++) assert.equal(rl.take("k", 1e9, 0).ok, true);
  });

  it("bounds the clients it remembers, forgetting the least recent", () => {
    const rl = new RateLimiter({ requestsPerMinute: 1, tokensPerMinute: 0 }, 2);
    assert.equal(rl.take("a", 1, 0).ok, true);
    assert.equal(rl.take("b", 1, 0).ok, true);
    assert.equal(rl.take("a", 1, 0).ok, false, "a is remembered");
    assert.equal(rl.take("c", 1, 0).ok, true, "c pushes out b, the least recent");
    assert.equal(rl.take("b", 1, 0).ok, true, "b was forgotten and starts full");
  });
});

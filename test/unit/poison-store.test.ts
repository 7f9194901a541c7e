import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PoisonStore } from "../../src/coordinator/pipeline/poison-store.js";
import { canonicalJson, requestFingerprint } from "../../src/coordinator/pipeline/request-fingerprint.js";

describe("PoisonStore", () => {
  it("remembers a fingerprint for its TTL, then forgets it", () => {
    const s = new PoisonStore({ ttlMs: 600_000, maxEntries: 10 });
    s.remember("a", 1000);
    assert.equal(s.has("a", 1000), true);
    assert.equal(s.has("a", 600_999), true);
    assert.equal(s.has("a", 601_000), false);
    assert.equal(s.size, 0, "an expired entry is dropped when seen");
  });

  it("holds at most maxEntries: the oldest goes first, a renewed one counts as new", () => {
    const s = new PoisonStore({ ttlMs: 1000, maxEntries: 2 });
    s.remember("a", 0);
    s.remember("b", 0);
    s.remember("a", 1); // renewed: now the newest
    s.remember("c", 2);
    assert.deepEqual(["a", "b", "c"].map((k) => s.has(k, 3)), [true, false, true]);
    assert.equal(s.size, 2);
  });

  it("remembers nothing with a TTL of 0", () => {
    const s = new PoisonStore({ ttlMs: 0, maxEntries: 10 });
    s.remember("a", 0);
    assert.equal(s.has("a", 0), false);
  });
});

describe("requestFingerprint", () => {
  const base = { prompt: "hi", sampling: { temperature: 0.5, grammar: "root ::= \"a\"" } };

  it("is the same whatever the key order and max_tokens, and differs with the model, prompt or sampling", () => {
    const f = requestFingerprint("m", base);
    assert.match(f, /^[0-9a-f]{64}$/);
    assert.equal(requestFingerprint("m", { prompt: "hi", sampling: { grammar: "root ::= \"a\"", temperature: 0.5 } }), f);
    assert.equal(requestFingerprint("m", { ...base, maxTokens: 9 } as typeof base), f);
    assert.notEqual(requestFingerprint("n", base), f);
    assert.notEqual(requestFingerprint("m", { ...base, prompt: "hi!" }), f);
    assert.notEqual(requestFingerprint("m", { ...base, sampling: { ...base.sampling, grammar: "root ::= \"b\"" } }), f);
    assert.notEqual(requestFingerprint("m", { messages: [{ role: "user", content: "hi" }], sampling: base.sampling }), f);
  });

  it("writes canonical JSON with sorted keys, own __proto__ keys included", () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }], u: undefined }), '{"a":[{"c":null,"d":2}],"b":1}');
    assert.equal(canonicalJson(JSON.parse('{"__proto__":{"x":1}}')), '{"__proto__":{"x":1}}');
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createRng } from "../../src/common/rng.js";
import { gammaGapMs } from "../../src/bench/arrivals.js";
import { OpenAiStreamReader, SeedStreamReader } from "../../src/bench/stream-readers.js";
import { errorReason } from "../../src/bench/load-client.js";
import { ChatWorkload, RandomWorkload, flatten, parseLengthDist } from "../../src/bench/workload.js";
import type { RequestResult } from "../../src/bench/request-result.js";

describe("the seed stream reader", () => {
  it("times tokens and reads the final event", () => {
    const r = new SeedStreamReader();
    r.onEvent('{"token":"a","finished":false}', 10);
    r.onEvent('{"token":"b","finished":false}', 14);
    r.onEvent('{"token":"c","seq":2}', 21);
    r.onEvent('{"token":"","finished":true,"reason":"length","prompt_tokens":5,"completion_tokens":3}', 21);
    assert.deepEqual(r.outcome(), {
      complete: true, reason: "ok", firstTokenMs: 10, itlMs: [4, 7], tokenEvents: 3, text: "abc",
      promptTokens: 5, completionTokens: 3, cachedTokens: undefined,
    });
  });

  it("takes prompt and cached tokens from a /worker/generate acknowledgement, which is no token", () => {
    const r = new SeedStreamReader();
    r.onEvent('{"prefill":{"status":"ok","prompt_tokens":9,"cached_tokens":4,"kv_cache_bytes":640,"worker_id":"w"}}', 3);
    r.onEvent('{"token":"a","seq":0}', 5);
    r.onEvent('{"token":"","seq":1,"finished":true,"reason":"length","prompt_tokens":9,"completion_tokens":1}', 6);
    const o = r.outcome();
    assert.deepEqual([o.firstTokenMs, o.tokenEvents, o.promptTokens, o.cachedTokens, o.complete], [5, 1, 9, 4, true]);
  });

  it("reports an error event's code and a stream cut before its end", () => {
    const err = new SeedStreamReader();
    err.onEvent('{"token":"a","finished":false}', 1);
    err.onEvent('{"token":"","finished":true,"reason":"error","error":{"code":"worker_error","message":"x"}}', 2);
    assert.equal(err.outcome().complete, false);
    assert.equal(err.outcome().reason, "worker_error");
    const cut = new SeedStreamReader();
    cut.onEvent('{"token":"a","finished":false}', 1);
    assert.deepEqual([cut.outcome().complete, cut.outcome().reason], [false, "stream_truncated"]);
  });
});

describe("the OpenAI stream reader", () => {
  it("reads chat deltas, skips the role-only first chunk and takes usage with cached tokens", () => {
    const r = new OpenAiStreamReader();
    r.onEvent('{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}', 3);
    r.onEvent('{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}', 5);
    r.onEvent('{"choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}]}', 8);
    r.onEvent('{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}', 8);
    r.onEvent('{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":8}}}', 9);
    r.onEvent("[DONE]", 9);
    assert.deepEqual(r.outcome(), {
      complete: true, reason: "ok", firstTokenMs: 5, itlMs: [3], tokenEvents: 2, text: "Hi there",
      promptTokens: 12, completionTokens: 2, cachedTokens: 8,
    });
  });

  it("reads completions text and an error chunk", () => {
    const r = new OpenAiStreamReader();
    r.onEvent('{"choices":[{"index":0,"text":"Once","finish_reason":null}]}', 1);
    r.onEvent('{"error":{"message":"worker died","type":"server_error","code":"worker_error"}}', 2);
    r.onEvent("[DONE]", 3);
    assert.deepEqual([r.outcome().complete, r.outcome().reason, r.outcome().text], [false, "worker_error", "Once"]);
  });

  it("treats a stream without [DONE] as cut", () => {
    const r = new OpenAiStreamReader();
    r.onEvent('{"choices":[{"index":0,"text":"a","finish_reason":null}]}', 1);
    assert.equal(r.outcome().complete, false);
  });
});

describe("error bodies", () => {
  const cases: [string, string, number, string][] = [
    ["seed", '{"error":"full","reason":"system_sessions_full","request_id":"r"}', 503, "system_sessions_full"],
    ["OpenAI with a code", '{"error":{"message":"m","type":"invalid_request_error","param":null,"code":"model_not_found"}}', 404, "model_not_found"],
    ["OpenAI with only a type", '{"error":{"message":"m","type":"server_error","code":null}}', 500, "server_error"],
    ["not JSON", "<html>", 502, "http_502"],
  ];
  for (const [name, body, status, want] of cases) it(`reads the reason of a ${name} body`, () => assert.equal(errorReason(body, status), want));
});

describe("workloads", () => {
  it("parses token length distributions", () => {
    assert.deepEqual(parseLengthDist("128"), { min: 128, max: 128 });
    assert.deepEqual(parseLengthDist("64:256"), { min: 64, max: 256 });
    assert.throws(() => parseLengthDist("0"));
    assert.throws(() => parseLengthDist("9:3"));
    assert.throws(() => parseLengthDist("abc"));
  });

  it("makes random prompts of 4-byte words, distinct and reproducible under a seed", () => {
    const a = new RandomWorkload({ min: 10, max: 10 }, { min: 5, max: 7 }, createRng(1));
    const b = new RandomWorkload({ min: 10, max: 10 }, { min: 5, max: 7 }, createRng(1));
    const specs = [0, 1, 2].map((i) => a.next(i));
    assert.deepEqual([0, 1, 2].map((i) => b.next(i)), specs);
    assert.equal(new Set(specs.map((s) => s.prompt)).size, 3);
    for (const s of specs) {
      assert.ok(s.maxTokens >= 5 && s.maxTokens <= 7);
      assert.match(s.prompt, /^ \d+( [a-z]{3}){9}$/);
    }
  });

  it("runs chat turns in order per user, with the received answer in the next turn's history", () => {
    const w = new ChatWorkload({ users: 2, turns: 2, systemPromptTokens: 16, userTokens: { min: 3, max: 3 }, output: { min: 4, max: 4 } }, createRng(5));
    const t1 = w.next(0)!;
    const t2 = w.next(1)!;
    assert.deepEqual([t1.sessionId, t2.sessionId], ["user-1", "user-2"]);
    assert.equal(w.next(2), undefined); // both users wait for their answers
    assert.equal(t1.messages[0]!.content, t2.messages[0]!.content); // one shared system prompt
    w.done(t1, { text: " the cat" } as RequestResult);
    const t3 = w.next(2)!;
    assert.equal(t3.sessionId, "user-1");
    assert.deepEqual(t3.messages.slice(0, 3), [...t1.messages, { role: "assistant", content: " the cat" }]);
    assert.ok(t3.prompt.startsWith(t1.prompt));
    assert.equal(t3.prompt, flatten(t3.messages));
    w.done(t2, { text: "" } as RequestResult);
    w.done(t3, { text: "" } as RequestResult);
    assert.equal(w.exhausted, false);
    const t4 = w.next(3)!;
    w.done(t4, { text: "" } as RequestResult);
    assert.equal(w.exhausted, true);
    assert.equal(w.next(4), undefined);
  });
});

describe("arrival gaps", () => {
  it("are reproducible under a seed and positive", () => {
    const a = Array.from({ length: 50 }, ((r) => () => gammaGapMs(r, 10, 0.5))(createRng(9)));
    const b = Array.from({ length: 50 }, ((r) => () => gammaGapMs(r, 10, 0.5))(createRng(9)));
    assert.deepEqual(a, b);
    for (const g of a) assert.ok(g > 0);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseDecodeEvent } from "../../src/protocol/decode-event.js";

/** The coordinator's classifier of worker stream events, /worker/generate's acknowledgement included. */
const ACK = { status: "ok", prompt_tokens: 7, kv_cache_bytes: 4480, cached_tokens: 3, worker_id: "w1", max_tokens: 12 };

describe("the worker stream event classifier", () => {
  it("classifies a generate stream's first event as the prefill acknowledgement, kept whole", () => {
    const withExtras = { ...ACK, kv_tier: "host", restored_tokens: 3, tool_syntax: { prefix: "<tool>", paramsPrefix: "", suffix: "</tool>", between: "" } };
    for (const prefill of [ACK, withExtras]) {
      assert.deepEqual(parseDecodeEvent(JSON.stringify({ prefill })), { kind: "prefill", prefill });
    }
  });

  it("refuses an acknowledgement that lacks a number the coordinator reads, or has it of another type", () => {
    const cases: [string, unknown][] = [
      ["not an object", 5],
      ["null", null],
      ["a list", [ACK]],
      ["no prompt_tokens", { ...ACK, prompt_tokens: undefined }],
      ["prompt_tokens as text", { ...ACK, prompt_tokens: "7" }],
      ["no cached_tokens", { ...ACK, cached_tokens: undefined }],
      ["negative cached_tokens", { ...ACK, cached_tokens: -1 }],
      ["no kv_cache_bytes", { ...ACK, kv_cache_bytes: undefined }],
      ["kv_cache_bytes as text", { ...ACK, kv_cache_bytes: "4480" }],
      ["no worker_id", { ...ACK, worker_id: undefined }],
      ["worker_id as a number", { ...ACK, worker_id: 1 }],
      ["max_tokens as text", { ...ACK, max_tokens: "12" }],
    ];
    for (const [name, prefill] of cases) {
      assert.equal(parseDecodeEvent(JSON.stringify({ prefill })), null, name);
    }
  });

  it("still classifies tokens, the end and an error end as before", () => {
    assert.deepEqual(parseDecodeEvent('{"token":"a","seq":0}'), { kind: "token", text: "a", seq: 0 });
    assert.deepEqual(parseDecodeEvent('{"token":"","seq":1,"finished":true,"reason":"length","prompt_tokens":2,"completion_tokens":1}'), {
      kind: "end", reason: "length", promptTokens: 2, completionTokens: 1, text: "",
    });
    assert.deepEqual(parseDecodeEvent('{"token":"","seq":0,"finished":true,"reason":"error","error":{"code":"decode_failed","message":"m"}}'), {
      kind: "error", code: "decode_failed", message: "m",
    });
    assert.equal(parseDecodeEvent("not json"), null);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ServingError } from "../../src/protocol/serving-error.js";
import { httpStatusOf, openAiErrorBody, seedErrorBody } from "../../src/protocol/error-mapping.js";
import { parseInferRequest } from "../../src/protocol/seed-api.js";
import { parseDecodeRequest, parsePrefillRequest } from "../../src/protocol/worker-api.js";
import { parseJsonObject } from "../../src/protocol/validate.js";

describe("seed infer request", () => {
  it("reads the seed's fields and defaults to greedy sampling", () => {
    const r = parseInferRequest({ prompt: "hi", model: "tinyllama-1.1b", max_tokens: 5 }, 1000);
    assert.deepEqual(r, { prompt: "hi", model: "tinyllama-1.1b", max_tokens: 5, sampling: { temperature: 0 } });
  });

  it("takes an optional priority for the admission queue", () => {
    assert.equal(parseInferRequest({ prompt: "hi", model: "m", max_tokens: 5, priority: -3 }, 1000).priority, -3);
  });

  it("takes optional sampling fields", () => {
    const r = parseInferRequest({ prompt: "hi", model: "m", max_tokens: 5, temperature: 0.7, top_k: 40, seed: 3, stop: "\n" }, 1000);
    assert.deepEqual(r.sampling, { temperature: 0.7, top_k: 40, seed: 3, stop: ["\n"] });
  });

  const bad: [string, Record<string, unknown>, string, string][] = [
    ["missing prompt", { model: "m", max_tokens: 5 }, "missing_field", "prompt"],
    ["missing model", { prompt: "p", max_tokens: 5 }, "missing_field", "model"],
    ["missing max_tokens", { prompt: "p", model: "m" }, "missing_field", "max_tokens"],
    ["empty prompt", { prompt: "", model: "m", max_tokens: 5 }, "invalid_field", "prompt"],
    ["prompt as a number", { prompt: 5, model: "m", max_tokens: 5 }, "invalid_field", "prompt"],
    ["max_tokens 0", { prompt: "p", model: "m", max_tokens: 0 }, "invalid_field", "max_tokens"],
    ["max_tokens negative", { prompt: "p", model: "m", max_tokens: -3 }, "invalid_field", "max_tokens"],
    ["max_tokens absurd", { prompt: "p", model: "m", max_tokens: 1e12 }, "invalid_field", "max_tokens"],
    ["max_tokens fractional", { prompt: "p", model: "m", max_tokens: 2.5 }, "invalid_field", "max_tokens"],
    ["max_tokens as a string", { prompt: "p", model: "m", max_tokens: "5" }, "invalid_field", "max_tokens"],
    ["temperature out of range", { prompt: "p", model: "m", max_tokens: 5, temperature: 9 }, "invalid_field", "temperature"],
    ["stop of the wrong type", { prompt: "p", model: "m", max_tokens: 5, stop: [1] }, "invalid_field", "stop"],
    ["logit_bias with a bad key", { prompt: "p", model: "m", max_tokens: 5, logit_bias: { x: 1 } }, "invalid_field", "logit_bias"],
    ["a fractional priority", { prompt: "p", model: "m", max_tokens: 5, priority: 1.5 }, "invalid_field", "priority"],
    ["a priority out of range", { prompt: "p", model: "m", max_tokens: 5, priority: 2_000_000 }, "invalid_field", "priority"],
  ];
  for (const [name, body, code, param] of bad) {
    it(`refuses ${name} with ${code} naming '${param}'`, () => {
      assert.throws(() => parseInferRequest(body, 1000), (e: unknown) => e instanceof ServingError && e.code === code && e.param === param);
    });
  }

  it("refuses bodies that are not JSON objects", () => {
    for (const text of ["", "{", "[1]", "null", "42", '"s"']) {
      assert.throws(() => parseJsonObject(text), (e: unknown) => e instanceof ServingError && httpStatusOf(e.code) === 400, text);
    }
  });
});

describe("worker requests", () => {
  it("reads prefill and decode", () => {
    const id = "3b241101-e2bb-4255-8caf-4136c566a962";
    assert.deepEqual(parsePrefillRequest({ session_id: id, prompt: "p", model: "m", max_tokens: 3 }), {
      session_id: id, prompt: "p", model: "m", max_tokens: 3, sampling: {},
    });
    assert.deepEqual(parseDecodeRequest({ session_id: id }), { session_id: id, max_tokens: undefined });
  });

  it("refuses unsafe session ids", () => {
    for (const sid of ["", "a b", "../../etc", "x".repeat(200), 5]) {
      assert.throws(() => parseDecodeRequest({ session_id: sid }), ServingError);
    }
  });
});

describe("error mapping", () => {
  const table: [ConstructorParameters<typeof ServingError>[0], number][] = [
    ["missing_field", 400], ["unauthorized", 401], ["session_not_found", 404], ["session_busy", 409], ["body_too_large", 413],
    ["rate_limited", 429], ["worker_failed", 502], ["no_workers", 503], ["system_sessions_full", 503], ["system_kv_cache_full", 503], ["internal", 500],
  ];
  for (const [code, status] of table) it(`${code} → ${status}`, () => assert.equal(httpStatusOf(code), status));

  it("shapes the seed and OpenAI bodies", () => {
    const e = new ServingError("invalid_field", "'max_tokens' must be an integer", { param: "max_tokens" });
    assert.deepEqual(seedErrorBody(e, "r1"), { error: "'max_tokens' must be an integer", reason: "invalid_field", request_id: "r1", param: "max_tokens" });
    assert.deepEqual(openAiErrorBody(e), { error: { message: "'max_tokens' must be an integer", type: "invalid_request_error", param: "max_tokens", code: "invalid_field" } });
    assert.equal((openAiErrorBody(new ServingError("model_not_found", "x")).error as { type: string }).type, "not_found_error");
  });
});

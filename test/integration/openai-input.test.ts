import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "undici";
import { getJson, postJson } from "../helpers/http.js";
import { startCoordinatorProc, type Served } from "../helpers/processes.js";

/** The OpenAI API's answers to bad input and to missing or wrong API keys, from a coordinator alone. */
const KEY = "sk-test-123";
const auth = { authorization: `Bearer ${KEY}` };
const msgs = [{ role: "user", content: "hi" }];

describe("the OpenAI API's answers to bad input", () => {
  let c: Served;
  before(async () => {
    c = await startCoordinatorProc({ MAX_BODY_BYTES: "4096", API_KEYS: `other-key,${KEY}` });
  });
  after(async () => c?.proc.stop());

  const cases: [string, string, unknown, number, string, string | null][] = [
    // name, path, body, status, code, param
    ["non-JSON", "chat/completions", "{nope", 400, "invalid_json", null],
    ["a JSON array", "chat/completions", "[]", 400, "invalid_request", null],
    ["an empty body", "completions", "", 400, "invalid_request", null],
    ["a body over the limit", "completions", { model: "m", prompt: "x".repeat(5000) }, 413, "body_too_large", null],
    ["a missing model", "chat/completions", { messages: msgs }, 400, "missing_field", "model"],
    ["a numeric model", "chat/completions", { model: 1, messages: msgs }, 400, "invalid_field", "model"],
    ["missing messages", "chat/completions", { model: "m" }, 400, "missing_field", "messages"],
    ["messages as a string", "chat/completions", { model: "m", messages: "hi" }, 400, "invalid_field", "messages"],
    ["a message without a role", "chat/completions", { model: "m", messages: [{ content: "hi" }] }, 400, "invalid_field", "messages[0].role"],
    ["null content", "chat/completions", { model: "m", messages: [{ role: "user", content: null }] }, 400, "invalid_field", "messages[0].content"],
    ["n = 9, above MAX_CHOICES", "chat/completions", { model: "m", messages: msgs, n: 9 }, 400, "invalid_field", "n"],
    ["top_logprobs without logprobs", "chat/completions", { model: "m", messages: msgs, top_logprobs: 3 }, 400, "invalid_request", "top_logprobs"],
    ["a negative max_tokens", "chat/completions", { model: "m", messages: msgs, max_tokens: -1 }, 400, "invalid_field", "max_tokens"],
    ["top_k as text", "completions", { model: "m", prompt: "p", top_k: "x" }, 400, "invalid_field", "top_k"],
    ["min_p of 2", "completions", { model: "m", prompt: "p", min_p: 2 }, 400, "invalid_field", "min_p"],
    ["a stop list of numbers", "completions", { model: "m", prompt: "p", stop: [1, 2] }, 400, "invalid_field", "stop"],
    ["a missing prompt", "completions", { model: "m" }, 400, "missing_field", "prompt"],
    ["a prompt object", "completions", { model: "m", prompt: { a: 1 } }, 400, "invalid_field", "prompt"],
    ["a response_format string", "chat/completions", { model: "m", messages: msgs, response_format: "json" }, 400, "invalid_field", "response_format"],
  ];
  for (const [name, path, body, status, code, param] of cases) {
    it(`answers ${status} ${code} in OpenAI's shape to ${name}`, async () => {
      const res = await postJson(`${c.url}/v1/${path}`, body, auth);
      assert.equal(res.status, status);
      assert.equal(res.body.error.code, code);
      assert.equal(res.body.error.param, param);
      assert.equal(res.body.error.type, status === 413 || status === 400 ? "invalid_request_error" : res.body.error.type);
      assert.equal(typeof res.body.error.message, "string");
    });
  }

  it("refuses a malformed x-session-id, naming the header", async () => {
    const res = await postJson(`${c.url}/v1/chat/completions`, { model: "m", messages: msgs }, { ...auth, "x-session-id": "has spaces" });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.param, "x-session-id");
  });

  it("answers a valid request without workers with 503 and Retry-After", async () => {
    const res = await postJson(`${c.url}/v1/chat/completions`, { model: "m", messages: msgs }, auth);
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, "no_workers");
    assert.equal(res.headers["retry-after"], "1");
  });

  it("answers unknown paths and wrong methods under /v1 in OpenAI's shape", async () => {
    const missing = await getJsonWith(`${c.url}/v1/embeddings`, auth);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, "not_found");
    const wrong = await getJsonWith(`${c.url}/v1/chat/completions`, auth);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.body.error.code, "method_not_allowed");
  });

  it("lists no models while no worker serves any", async () => {
    const res = await getJsonWith(`${c.url}/v1/models`, auth);
    assert.deepEqual(res.body, { object: "list", data: [] });
  });

  it("answers 401 without a key or with a wrong one, on both client APIs; health needs none", async () => {
    for (const headers of [{}, { authorization: "Bearer nope" }, { authorization: KEY }] as Record<string, string>[]) {
      const res = await postJson(`${c.url}/v1/chat/completions`, { model: "m", messages: msgs }, headers);
      assert.equal(res.status, 401);
      assert.equal(res.body.error.type, "authentication_error");
      assert.equal(res.body.error.code, "unauthorized");
      assert.equal((await getJsonWith(`${c.url}/v1/models`, headers)).status, 401);
    }
    const seed = await postJson(`${c.url}/coordinator/infer`, { prompt: "p", model: "m", max_tokens: 1 });
    assert.equal(seed.status, 401);
    assert.equal(seed.body.reason, "unauthorized");
    assert.equal((await postJson(`${c.url}/coordinator/infer`, { prompt: "p", model: "m", max_tokens: 1 }, { authorization: "Bearer other-key" })).status, 503);
    assert.equal((await getJson(`${c.url}/coordinator/health`)).status, 200);
    assert.equal(c.proc.alive, true);
  });
});

async function getJsonWith(url: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const res = await request(url, { headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: res.statusCode, body: JSON.parse(await res.body.text()) };
}

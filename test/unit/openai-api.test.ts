import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ServingError } from "../../src/protocol/serving-error.js";
import { parseDecodeEvent } from "../../src/protocol/decode-event.js";
import { parseChatRequest, parseCompletionRequest } from "../../src/protocol/openai-api.js";
import { OpenAiChunks, finishReasonOf, openAiChoicesBody, openAiResponseBody, openAiStreamError, usageOf } from "../../src/protocol/openai-stream.js";
import { parsePrefillRequest } from "../../src/protocol/worker-api.js";

const LIMIT = 100_000;
const chat = (o: Record<string, unknown>) => parseChatRequest({ model: "m", messages: [{ role: "user", content: "hi" }], ...o }, LIMIT);
const completion = (o: Record<string, unknown>) => parseCompletionRequest({ model: "m", prompt: "p", ...o }, LIMIT);

function paramOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ServingError, String(err));
    assert.ok(["invalid_field", "missing_field", "invalid_request"].includes(err.code), err.code);
    return err.param;
  }
  assert.fail("expected a refusal");
}

describe("OpenAI requests", () => {
  it("reads a chat request with OpenAI's defaults", () => {
    const r = chat({ messages: [{ role: "developer", content: [{ type: "text", text: "be " }, { type: "text", text: "brief" }] }, { role: "user", content: "hi" }] });
    assert.deepEqual(r, {
      kind: "chat", model: "m", prompt: undefined,
      messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }],
      maxTokens: undefined, maxTokensParam: "max_tokens", sampling: { temperature: 1 }, stream: false, includeUsage: false, user: undefined, n: 1,
    });
  });

  it("reads a completion request: default max_tokens 16, a one-string list as the prompt", () => {
    const r = completion({ prompt: ["Once"], stream: true, stream_options: { include_usage: true }, user: "u-1" });
    assert.equal(r.prompt, "Once");
    assert.equal(r.maxTokens, 16);
    assert.equal(r.stream, true);
    assert.equal(r.includeUsage, true);
    assert.equal(r.user, "u-1");
  });

  it("takes max_completion_tokens over max_tokens and names it in errors", () => {
    const r = chat({ max_tokens: 5, max_completion_tokens: 7 });
    assert.equal(r.maxTokens, 7);
    assert.equal(r.maxTokensParam, "max_completion_tokens");
    assert.equal(chat({ max_tokens: 5 }).maxTokens, 5);
  });

  it("maps sampling parameters, stop, logit_bias and seed", () => {
    const r = completion({ temperature: 0, top_p: 0.9, top_k: 20, min_p: 0.05, seed: 7, stop: "\n", presence_penalty: 0.5, frequency_penalty: -0.5, repeat_penalty: 1.1, logit_bias: { "50256": -100 } });
    assert.deepEqual(r.sampling, {
      temperature: 0, top_p: 0.9, top_k: 20, min_p: 0.05, seed: 7, stop: ["\n"], presence_penalty: 0.5, frequency_penalty: -0.5,
      repeat_penalty: 1.1, logit_bias: { "50256": -100 },
    });
  });

  it("turns response_format into a JSON grammar", () => {
    assert.deepEqual(chat({ response_format: { type: "json_object" } }).sampling.json_schema, {});
    const schema = { type: "object", properties: { a: { type: "integer" } } };
    assert.deepEqual(chat({ response_format: { type: "json_schema", json_schema: { name: "x", schema } } }).sampling.json_schema, schema);
    assert.equal(chat({ response_format: { type: "text" } }).sampling.json_schema, undefined);
    assert.equal(chat({ stream_options: { include_usage: true } }).includeUsage, false, "usage chunks only for streams");
  });

  const refusals: [string, () => unknown, string][] = [
    ["a missing model", () => parseChatRequest({ messages: [] }, LIMIT), "model"],
    ["missing messages", () => parseChatRequest({ model: "m" }, LIMIT), "messages"],
    ["empty messages", () => chat({ messages: [] }), "messages"],
    ["a message that is not an object", () => chat({ messages: ["hi"] }), "messages[0]"],
    ["an unknown role", () => chat({ messages: [{ role: "user", content: "a" }, { role: "function", content: "x" }] }), "messages[1].role"],
    ["non-text content", () => chat({ messages: [{ role: "user", content: [{ type: "image_url", image_url: {} }] }] }), "messages[0].content[0]"],
    ["numeric content", () => chat({ messages: [{ role: "user", content: 5 }] }), "messages[0].content"],
    ["n = 9 (above the default MAX_CHOICES of 8)", () => chat({ n: 9 }), "n"],
    ["n = 3 above a MAX_CHOICES of 2", () => parseChatRequest({ model: "m", messages: [{ role: "user", content: "hi" }], n: 3 }, LIMIT, 2), "n"],
    ["n = 0", () => chat({ n: 0 }), "n"],
    ["n = 1.5", () => chat({ n: 1.5 }), "n"],
    ["temperature 3", () => chat({ temperature: 3 }), "temperature"],
    ["top_p as text", () => chat({ top_p: "high" }), "top_p"],
    ["max_tokens 0", () => chat({ max_tokens: 0 }), "max_tokens"],
    ["max_completion_tokens above the limit", () => chat({ max_completion_tokens: LIMIT + 1 }), "max_completion_tokens"],
    ["17 stop strings", () => chat({ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }), "stop"],
    ["an empty stop string", () => chat({ stop: [""] }), "stop"],
    ["a logit_bias key that is no token id", () => chat({ logit_bias: { abc: 1 } }), "logit_bias"],
    ["a logit_bias of 101", () => chat({ logit_bias: { "1": 101 } }), "logit_bias"],
    ["a seed that is not an integer", () => chat({ seed: 1.5 }), "seed"],
    ["stream as text", () => chat({ stream: "yes" }), "stream"],
    ["stream_options as a list", () => chat({ stream_options: [] }), "stream_options"],
    ["include_usage as text", () => chat({ stream_options: { include_usage: "yes" } }), "stream_options.include_usage"],
    ["an unknown response_format", () => chat({ response_format: { type: "xml" } }), "response_format.type"],
    ["a json_schema without an object", () => chat({ response_format: { type: "json_schema", json_schema: 5 } }), "response_format.json_schema"],
    ["a schema that is a list", () => chat({ response_format: { type: "json_schema", json_schema: { name: "x", schema: [] } } }), "response_format.json_schema.schema"],
    ["response_format with a grammar", () => chat({ grammar: "root ::= \"a\"", response_format: { type: "json_object" } }), "response_format"],
    ["tools that are not function tools", () => chat({ tools: [{ type: "web_search" }] }), "tools[0]"],
    ["tool_choice required without tools", () => chat({ tool_choice: "required" }), "tool_choice"],
    ["chat logprobs as a number", () => chat({ logprobs: 1 }), "logprobs"],
    ["top_logprobs without logprobs", () => chat({ top_logprobs: 2 }), "top_logprobs"],
    ["top_logprobs of 21", () => chat({ logprobs: true, top_logprobs: 21 }), "top_logprobs"],
    ["top_logprobs of -1", () => chat({ logprobs: true, top_logprobs: -1 }), "top_logprobs"],
    ["a user that is not a string", () => chat({ user: 5 }), "user"],
    ["a priority that is not an integer", () => chat({ priority: "high" }), "priority"],
    ["a missing prompt", () => parseCompletionRequest({ model: "m" }, LIMIT), "prompt"],
    ["an empty prompt", () => completion({ prompt: "" }), "prompt"],
    ["a token-id prompt", () => completion({ prompt: [1, 2, 3] }), "prompt"],
    ["a batch of prompts", () => completion({ prompt: ["a", "b"] }), "prompt"],
    ["echo", () => completion({ echo: true }), "echo"],
    ["completion logprobs of 6", () => completion({ logprobs: 6 }), "logprobs"],
    ["completion logprobs as true", () => completion({ logprobs: true }), "logprobs"],
    ["best_of 2", () => completion({ best_of: 2 }), "best_of"],
    ["a suffix", () => completion({ suffix: "end" }), "suffix"],
  ];
  for (const [name, fn, param] of refusals) it(`refuses ${name}, naming '${param}'`, () => assert.equal(paramOf(fn), param));

  it("reads logprobs: chat's logprobs and top_logprobs, completions' count, as top_logprobs", () => {
    assert.equal(chat({}).sampling.top_logprobs, undefined);
    assert.equal(chat({ logprobs: false }).sampling.top_logprobs, undefined);
    assert.equal(chat({ logprobs: true }).sampling.top_logprobs, 0);
    assert.equal(chat({ logprobs: true, top_logprobs: 20 }).sampling.top_logprobs, 20);
    assert.equal(completion({}).sampling.top_logprobs, undefined);
    assert.equal(completion({ logprobs: 0 }).sampling.top_logprobs, 0);
    assert.equal(completion({ logprobs: 5 }).sampling.top_logprobs, 5);
    assert.equal(completion({ top_logprobs: 3 }).sampling.top_logprobs, undefined, "not a completions parameter");
  });

  it("reads n, 1 by default", () => {
    assert.equal(chat({}).n, 1);
    assert.equal(chat({ n: 8 }).n, 8);
    assert.equal(completion({ n: 3 }).n, 3);
  });

  it("takes vLLM's priority for the admission queue", () => {
    assert.equal(chat({ priority: 7 }).priority, 7);
    assert.equal(completion({ priority: -1 }).priority, -1);
  });
});

describe("OpenAI response bytes", () => {
  const meta = { kind: "chat" as const, id: "chatcmpl-1", created: 1700000000, model: "m", includeUsage: true };
  it("streams chat chunks with the role first, usage null, then the finish, usage and [DONE]", () => {
    const c = new OpenAiChunks(meta);
    const head = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m",';
    assert.equal(c.role(), `data: ${head}"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}\n\n`);
    assert.equal(c.text(["He", "llo \"x\""]), `data: ${head}"choices":[{"index":0,"delta":{"content":"Hello \\"x\\""},"logprobs":null,"finish_reason":null}],"usage":null}\n\n`);
    assert.equal(c.text(["", ""]), "");
    assert.equal(
      c.end("length", usageOf(3, 2, 1)),
      `data: ${head}"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null}\n\n` +
        `data: ${head}"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":1}}}\n\n` +
        "data: [DONE]\n\n",
    );
  });

  it("streams completion chunks without usage unless asked", () => {
    const c = new OpenAiChunks({ ...meta, kind: "completion", id: "cmpl-1", includeUsage: false });
    const head = '{"id":"cmpl-1","object":"text_completion","created":1700000000,"model":"m",';
    assert.equal(c.role(), "");
    assert.equal(c.text(["a"]), `data: ${head}"choices":[{"index":0,"text":"a","logprobs":null,"finish_reason":null}]}\n\n`);
    assert.equal(c.end("stop", usageOf(1, 1, 0)), `data: ${head}"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n`);
  });

  it("parses as JSON in every chunk", () => {
    const c = new OpenAiChunks(meta);
    for (const line of (c.role() + c.text(["x\n\u2028"]) + c.end("stop", usageOf(1, 1, 0))).split("\n\n")) {
      if (line === "" || line === "data: [DONE]") continue;
      JSON.parse(line.slice(6));
    }
  });

  it("answers non-streamed bodies in OpenAI's shapes", () => {
    assert.deepEqual(openAiResponseBody(meta, "hi", "stop", usageOf(2, 1, 0)), {
      id: "chatcmpl-1", object: "chat.completion", created: 1700000000, model: "m",
      choices: [{ index: 0, message: { role: "assistant", content: "hi", refusal: null }, logprobs: null, finish_reason: "stop" }],
      usage: { prompt_tokens: 2, completion_tokens: 1, total_tokens: 3, prompt_tokens_details: { cached_tokens: 0 } },
    });
    const body = openAiResponseBody({ ...meta, kind: "completion" }, "hi", "length", usageOf(2, 1, 0));
    assert.equal(body.object, "text_completion");
    assert.deepEqual(body.choices, [{ index: 0, text: "hi", logprobs: null, finish_reason: "length" }]);
  });

  const entry = (token: string, logprob: number, top: [string, number][]) => ({
    token, logprob, bytes: [...Buffer.from(token)], top_logprobs: top.map(([t, l]) => ({ token: t, logprob: l, bytes: [...Buffer.from(t)] })),
  });

  it("streams a chat chunk per choice index, with logprobs in OpenAI's content shape", () => {
    const c = new OpenAiChunks({ ...meta, includeUsage: false });
    const head = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m",';
    const e = entry("hé", -0.5, [["hé", -0.5], ["a", -1.25]]);
    assert.equal(c.role(2), `data: ${head}"choices":[{"index":2,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n`);
    assert.equal(
      c.text(["hé"], [e], 2),
      `data: ${head}"choices":[{"index":2,"delta":{"content":"hé"},"logprobs":{"content":[{"token":"hé","logprob":-0.5,"bytes":[104,195,169],` +
        `"top_logprobs":[{"token":"hé","logprob":-0.5,"bytes":[104,195,169]},{"token":"a","logprob":-1.25,"bytes":[97]}]}],"refusal":null},"finish_reason":null}]}\n\n`,
    );
    // A token whose text is still held back (a stop string may begin) still sends its logprobs.
    assert.notEqual(c.text([""], [e], 0), "");
    assert.equal(c.finish("stop", 1), `data: ${head}"choices":[{"index":1,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\n`);
    assert.equal(c.done(usageOf(1, 1, 0)), "data: [DONE]\n\n");
  });

  it("streams completion logprobs in the legacy shape, text offsets running on per choice", () => {
    const c = new OpenAiChunks({ ...meta, kind: "completion", id: "cmpl-1", includeUsage: false });
    const first = JSON.parse(c.text(["ab"], [entry("a", -1, [["a", -1]]), entry("b", -2, [["c", -0.5], ["b", -2]])], 1).slice(6));
    assert.deepEqual(first.choices[0].logprobs, {
      tokens: ["a", "b"], token_logprobs: [-1, -2], top_logprobs: [{ a: -1 }, { c: -0.5, b: -2 }], text_offset: [0, 1],
    });
    const next = JSON.parse(c.text(["cd"], [entry("cd", -3, [])], 1).slice(6));
    assert.deepEqual(next.choices[0].logprobs.text_offset, [2]);
    const other = JSON.parse(c.text(["x"], [entry("x", -3, [])], 0).slice(6));
    assert.deepEqual(other.choices[0].logprobs.text_offset, [0]);
  });

  it("answers n choices and their logprobs in one body", () => {
    const e = entry("a", -0.25, []);
    const body = openAiChoicesBody(meta, [
      { text: "a", finish: "stop", logprobs: [e] },
      { text: "b", finish: "length", logprobs: [] },
    ], usageOf(2, 2, 0));
    assert.deepEqual(body.choices, [
      { index: 0, message: { role: "assistant", content: "a", refusal: null }, logprobs: { content: [e], refusal: null }, finish_reason: "stop" },
      { index: 1, message: { role: "assistant", content: "b", refusal: null }, logprobs: { content: [], refusal: null }, finish_reason: "length" },
    ]);
    const legacy = openAiChoicesBody({ ...meta, kind: "completion" }, [{ text: "a", finish: "stop", logprobs: [e] }], usageOf(2, 1, 0));
    assert.deepEqual(legacy.choices, [{ index: 0, text: "a", logprobs: { tokens: ["a"], token_logprobs: [-0.25], top_logprobs: [{}], text_offset: [0] }, finish_reason: "stop" }]);
  });

  it("maps the worker's reasons and frames errors", () => {
    assert.equal(finishReasonOf("length"), "length");
    assert.equal(finishReasonOf("stop"), "stop");
    assert.equal(openAiStreamError("worker_error", "boom"), 'data: {"error":{"message":"boom","type":"server_error","param":null,"code":"worker_error"}}\n\n');
  });
});

describe("the worker API's added fields", () => {
  it("takes messages instead of a prompt, a conversation and no max_tokens", () => {
    const r = parsePrefillRequest({ session_id: "s-1", messages: [{ role: "user", content: "hi" }], conversation_id: "conv.1" });
    assert.deepEqual(r, { session_id: "s-1", model: undefined, max_tokens: undefined, sampling: {}, messages: [{ role: "user", content: "hi" }], conversation_id: "conv.1" });
  });
  it("keeps the seed's prefill as it was", () => {
    const r = parsePrefillRequest({ session_id: "s-1", prompt: "p", model: "m", max_tokens: 3 });
    assert.deepEqual(r, { session_id: "s-1", prompt: "p", model: "m", max_tokens: 3, sampling: {} });
  });
  const bad: [string, Record<string, unknown>, string][] = [
    ["neither prompt nor messages", { session_id: "s" }, "prompt"],
    ["both prompt and messages", { session_id: "s", prompt: "p", messages: [{ role: "user", content: "x" }] }, "messages"],
    ["a conversation id with spaces", { session_id: "s", prompt: "p", conversation_id: "a b" }, "conversation_id"],
  ];
  for (const [name, body, param] of bad) it(`refuses ${name}`, () => assert.equal(paramOf(() => parsePrefillRequest(body)), param));

  it("classifies decode events, the final one with held-back text", () => {
    assert.deepEqual(parseDecodeEvent('{"token":"a","seq":0}'), { kind: "token", text: "a", seq: 0 });
    assert.deepEqual(parseDecodeEvent('{"token":"b","seq":3,"finished":true,"reason":"stop","prompt_tokens":2,"completion_tokens":3}'), {
      kind: "end", reason: "stop", promptTokens: 2, completionTokens: 3, text: "b",
    });
    assert.deepEqual(parseDecodeEvent('{"token":"","finished":true,"reason":"error","error":{"code":"x","message":"y"}}'), { kind: "error", code: "x", message: "y" });
    // The prefix-cache notice a completed stream carries travels along, unvalidated (the index checks it).
    const withCache = parseDecodeEvent('{"token":"","seq":1,"finished":true,"reason":"length","prompt_tokens":2,"completion_tokens":1,"cache":{"epoch":"e","event":{"seq":4,"op":"add","id":2,"blocks":[]}}}');
    assert.deepEqual(withCache, { kind: "end", reason: "length", promptTokens: 2, completionTokens: 1, text: "", cache: { epoch: "e", event: { seq: 4, op: "add", id: 2, blocks: [] } } });
    assert.equal(parseDecodeEvent("not json"), null);
    assert.equal(parseDecodeEvent('{"seq":1}'), null);
  });
});

describe("JSON schemas a grammar can enforce", () => {
  it("accepts the strict-mode subset (patterns, bounds, formats included) and passes the schema on unchanged", () => {
    const schema = {
      $schema: "https://json-schema.org/draft/2020-12/schema", title: "Person", type: "object",
      properties: {
        name: { type: "string", minLength: 1, maxLength: 12, description: "first name" },
        born: { type: "string", format: "date" },
        code: { type: "string", pattern: "^[A-Z]{3}$" },
        age: { type: "integer", minimum: 0, maximum: 150 },
        tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 3 },
        pet: { anyOf: [{ type: "null" }, { $ref: "#/$defs/pet" }] },
      },
      required: ["name"], additionalProperties: false, $defs: { pet: { type: "object", properties: { kind: { const: "cat" } } } },
    };
    const s = chat({ response_format: { type: "json_schema", json_schema: { name: "p", strict: true, schema } } }).sampling.json_schema!;
    assert.deepEqual(s, schema);
  });
  const refused: [string, Record<string, unknown>][] = [
    ["a pattern with a lookahead", { type: "object", properties: { a: { type: "string", pattern: "^(?=a)a$" } } }],
    ["a fractional minimum on a number", { type: "object", properties: { a: { type: "number", minimum: 0.5 } } }],
    ["an unknown format", { type: "string", format: "iri" }],
    ["an unknown type", { type: "frobnicate" }],
    ["an outside $ref", { $ref: "https://example.org/s.json" }],
    ["allOf", { allOf: [{ type: "string" }] }],
  ];
  for (const [name, schema] of refused) {
    it(`refuses ${name}`, () => {
      assert.equal(paramOf(() => chat({ response_format: { type: "json_schema", json_schema: { name: "x", schema } } })), "response_format.json_schema.schema");
    });
  }
});

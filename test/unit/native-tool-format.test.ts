import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { scanNativeCalls, type NativeCallSyntax } from "../../src/protocol/tools/native-tool-calls.js";
import { callFormatOf, GENERIC_CALLS } from "../../src/protocol/tools/call-format.js";
import { OpenAiChunks, usageOf } from "../../src/protocol/openai-stream.js";
import { parseChatRequest } from "../../src/protocol/openai-api.js";
import { ToolCallStream } from "../../src/protocol/tools/tool-call-stream.js";
import { readToolRequest } from "../../src/protocol/tools/tool-request.js";
import { readWorkerTools, workerToolsOf } from "../../src/protocol/tools/worker-tools.js";
import { parsePrefillRequest } from "../../src/protocol/worker-api.js";
import { ServingError } from "../../src/protocol/serving-error.js";

const HERMES: NativeCallSyntax = { prefix: '<tool_call>\n{"name": "', paramsPrefix: '", "arguments": ', suffix: "}\n</tool_call>", between: "\n" };
const ADD = { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] };
const TOOLS = [
  { type: "function", function: { name: "add", description: "Adds", parameters: ADD } },
  { type: "function", function: { name: "now" } },
];
const ids = () => {
  let n = 0;
  return () => String(++n).padStart(24, "0");
};
const meta = { kind: "chat" as const, id: "c", created: 1, model: "m", includeUsage: false };

describe("the model's own tool-call format on the coordinator", () => {
  const partials: [string, { name: string | undefined; args: string; done: boolean }[]][] = [
    ["", []],
    ["<tool_ca", []],
    ['<tool_call>\n{"name": "ad', [{ name: undefined, args: "", done: false }]],
    ['<tool_call>\n{"name": "add", "arguments": {"a": [1, {"b": "}"}', [{ name: "add", args: '{"a": [1, {"b": "}"}', done: false }]],
    ['<tool_call>\n{"name": "add", "arguments": {"a":1}}\n</tool_call>\n<tool_call>\n{"name": "now", "arguments": {', [
      { name: "add", args: '{"a":1}', done: true }, { name: "now", args: "{", done: false },
    ]],
  ];
  for (const [text, want] of partials) {
    it(`scans ${JSON.stringify(text)}: each call's name and a prefix of its arguments`, () => assert.deepEqual(scanNativeCalls(text, HERMES), want));
  }

  it("the format named by the prefill answer: Hermes calls start with '<', generic ones with '{'", () => {
    assert.equal(callFormatOf(undefined), GENERIC_CALLS);
    const f = callFormatOf(HERMES);
    assert.equal(f.start, "<");
    assert.deepEqual(f.parse('<tool_call>\n{"name": "add", "arguments": {"a":1,"b":2}}\n</tool_call>', new Set(["add"]), ids()), [
      { id: "call_000000000000000000000001", type: "function", function: { name: "add", arguments: '{"a":1,"b":2}' } },
    ]);
    assert.equal(f.parse('{"tool_calls":[{"name":"add","arguments":{}}]}', new Set(["add"]), ids()), undefined);
  });

  it("streams Hermes calls as OpenAI deltas: name once it closes, then new argument text; finish tool_calls", () => {
    const chunks = new OpenAiChunks(meta);
    const s = new ToolCallStream(chunks, readToolRequest({ tools: TOOLS })!, ids(), 0, callFormatOf(HERMES));
    const head = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[';
    const tail = ']},"logprobs":null,"finish_reason":null}]}\n\n';
    assert.equal(s.tokens(["<tool_call>\n", '{"name": "ad']), "");
    assert.equal(s.tokens(['d", "arguments": {"a":']), [
      `${head}{"index":0,"id":"call_000000000000000000000001","type":"function","function":{"name":"add","arguments":""}}${tail}`,
      `${head}{"index":0,"function":{"arguments":"{\\"a\\":"}}${tail}`,
    ].join(""));
    assert.equal(s.tokens(['1,"b":2}}\n</tool_call>']), `${head}{"index":0,"function":{"arguments":"1,\\"b\\":2}"}}${tail}`);
    assert.equal(s.end("stop", usageOf(1, 2, 0)), chunks.finish("tool_calls") + chunks.done(usageOf(1, 2, 0)));
  });

  it("under auto, a Hermes answer whose first character is not '<' streams as text, '{' included", () => {
    const chunks = new OpenAiChunks(meta);
    const s = new ToolCallStream(chunks, readToolRequest({ tools: TOOLS })!, ids(), 0, callFormatOf(HERMES));
    assert.equal(s.tokens(["  "]), "");
    assert.equal(s.tokens(['{"a"']), chunks.text(['  {"a"']));
  });

  it("a chat request with tools carries them to the worker with the structured history; none carries nothing", () => {
    const messages = [
      { role: "user", content: "add" },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "add", arguments: '{"a":1,"b":2}' } }] },
      { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: "3" }] },
    ];
    const req = parseChatRequest({ model: "m", messages, tools: TOOLS, tool_choice: "required", parallel_tool_calls: false }, 1000);
    assert.deepEqual(req.workerTools, {
      tools: req.tools!.tools, choice: "required", parallel: false,
      history: [
        { role: "user", content: "add" },
        { role: "assistant", content: "", tool_calls: [{ id: "call_1", name: "add", arguments: '{"a":1,"b":2}' }] },
        { role: "tool", content: "3", tool_call_id: "call_1" },
      ],
    });
    assert.equal(parseChatRequest({ model: "m", messages, tools: TOOLS, tool_choice: "none" }, 1000).workerTools, undefined);
    assert.equal(workerToolsOf(readToolRequest({ tools: TOOLS, tool_choice: "none" })!, messages), undefined);
  });

  it("the worker API reads tools with chat messages (and only the shape), ignores them with a prompt", () => {
    const tools = { tools: [{ name: "add" }], choice: "auto", parallel: true, history: [{ role: "user", content: "hi" }] };
    const withTools = parsePrefillRequest({ session_id: "s", messages: [{ role: "user", content: "hi" }], tools });
    assert.deepEqual(withTools.tools, tools);
    assert.equal(parsePrefillRequest({ session_id: "s", prompt: "hi", tools }).tools, undefined);
    assert.throws(() => readWorkerTools({ ...tools, choice: "none" }), (e: unknown) => e instanceof ServingError && e.param === "tools");
    assert.throws(() => readWorkerTools({ ...tools, history: [{ role: "function", content: "x" }] }), (e: unknown) => e instanceof ServingError && e.param === "tools");
  });
});

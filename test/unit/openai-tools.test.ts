import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ServingError } from "../../src/protocol/serving-error.js";
import { parseChatRequest } from "../../src/protocol/openai-api.js";
import { OpenAiChunks, openAiResponseBody, usageOf } from "../../src/protocol/openai-stream.js";
import { readToolRequest } from "../../src/protocol/tools/tool-request.js";
import { toolCallSchema } from "../../src/protocol/tools/tool-call-schema.js";
import { renameRule, textOrJsonGrammar } from "../../src/protocol/tools/tool-call-grammar.js";
import { parsePrefillRequest } from "../../src/protocol/worker-api.js";
import { parseToolCalls, scanCalls } from "../../src/protocol/tools/tool-call-output.js";
import { ToolCallStream } from "../../src/protocol/tools/tool-call-stream.js";
import { lowerToolMessages } from "../../src/protocol/tools/tool-messages.js";

const ADD = { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] };
const TOOLS = [
  { type: "function", function: { name: "add", description: "Adds", parameters: ADD } },
  { type: "function", function: { name: "now" } },
];
const chat = (o: Record<string, unknown>) => parseChatRequest({ model: "m", messages: [{ role: "user", content: "hi" }], tools: TOOLS, ...o }, 1000);
const ids = () => {
  let n = 0;
  return () => String(++n).padStart(24, "0");
};

function paramOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ServingError, String(err));
    return err.param;
  }
  assert.fail("expected a refusal");
}

describe("tool requests", () => {
  it("reads tools, tool_choice and parallel_tool_calls", () => {
    assert.deepEqual(readToolRequest({ tools: TOOLS }), {
      tools: [{ name: "add", description: "Adds", parameters: ADD }, { name: "now", description: undefined, parameters: undefined }],
      choice: "auto", parallel: true,
    });
    assert.deepEqual(readToolRequest({ tools: TOOLS, tool_choice: { type: "function", function: { name: "now" } }, parallel_tool_calls: false })?.choice, { name: "now" });
    assert.equal(readToolRequest({ tools: TOOLS, tool_choice: "required" })?.choice, "required");
    assert.equal(readToolRequest({ tools: [] }), undefined);
    assert.equal(readToolRequest({ tool_choice: "none" }), undefined);
  });

  const refusals: [string, Record<string, unknown>, string][] = [
    ["a tool that is not a function", { tools: [{ type: "code" }] }, "tools[0]"],
    ["a bad tool name", { tools: [{ type: "function", function: { name: "a b" } }] }, "tools[0].function.name"],
    ["a repeated tool name", { tools: [TOOLS[0], TOOLS[0]] }, "tools[1].function.name"],
    ["parameters that are a list", { tools: [{ type: "function", function: { name: "f", parameters: [] } }] }, "tools[0].function.parameters"],
    ["a named choice of an unknown tool", { tools: TOOLS, tool_choice: { type: "function", function: { name: "x" } } }, "tool_choice"],
    ["an unknown tool_choice", { tools: TOOLS, tool_choice: "any" }, "tool_choice"],
    ["parallel_tool_calls as text", { tools: TOOLS, parallel_tool_calls: "no" }, "parallel_tool_calls"],
    ["the deprecated functions", { functions: [{ name: "f" }] }, "functions"],
  ];
  for (const [name, body, param] of refusals) it(`refuses ${name}, naming '${param}'`, () => assert.equal(paramOf(() => readToolRequest(body)), param));

  it("refuses parameters the grammar cannot enforce under required, naming the tool", () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { s: { type: "array", uniqueItems: true } } } } }];
    assert.equal(paramOf(() => chat({ tools, tool_choice: "required" })), "tools[0].function.parameters");
  });

  it("refuses tools with response_format, unless tool_choice is none", () => {
    assert.equal(paramOf(() => chat({ response_format: { type: "json_object" } })), "tools");
    assert.deepEqual(chat({ response_format: { type: "json_object" }, tool_choice: "none" }).sampling.json_schema, {});
  });
});

describe("tool-call grammars", () => {
  it("required: a schema whose calls are the offered tools with their parameters", () => {
    const req = readToolRequest({ tools: TOOLS, tool_choice: "required", parallel_tool_calls: false })!;
    assert.deepEqual(toolCallSchema(req), {
      type: "object",
      properties: {
        tool_calls: {
          type: "array",
          items: {
            anyOf: [
              { type: "object", properties: { name: { const: "add" }, arguments: ADD }, required: ["name", "arguments"], additionalProperties: false },
              { type: "object", properties: { name: { const: "now" }, arguments: { type: "object" } }, required: ["name", "arguments"], additionalProperties: false },
            ],
          },
          minItems: 1, maxItems: 1,
        },
      },
      required: ["tool_calls"], additionalProperties: false,
    });
  });

  it("a named choice offers only that tool, and a tool's $defs move to the root with its refs", () => {
    const params = { type: "object", properties: { p: { $ref: "#/$defs/pt" } }, $defs: { pt: { type: "string", enum: ["x"] } } };
    const req = readToolRequest({ tools: [TOOLS[0], { type: "function", function: { name: "g", parameters: params } }], tool_choice: { type: "function", function: { name: "g" } } })!;
    const s = toolCallSchema(req);
    assert.deepEqual(s.$defs, { "t1.pt": { type: "string", enum: ["x"] } });
    const calls = (s.properties as any).tool_calls;
    assert.equal(calls.maxItems, undefined, "parallel calls by default");
    assert.deepEqual(calls.items.properties, { name: { const: "g" }, arguments: { type: "object", properties: { p: { $ref: "#/$defs/t1.pt" } } } });
  });

  it("every choice but none becomes the call schema; auto also allows text instead; none nothing", () => {
    for (const tool_choice of ["required", { type: "function", function: { name: "add" } }, "auto"]) {
      const s = chat({ tool_choice }).sampling;
      assert.equal(s.grammar, undefined);
      assert.deepEqual(s.json_schema, toolCallSchema(readToolRequest({ tools: TOOLS, tool_choice })!));
      assert.equal(s.json_schema_or_text, tool_choice === "auto" ? true : undefined);
    }
    // Under auto the arguments' schema is each tool's own (not just any object).
    const auto = chat({}).sampling.json_schema as any;
    assert.deepEqual(auto.properties.tool_calls.items.anyOf[0].properties.arguments, ADD);
    assert.equal(chat({}).tools?.choice, "auto");
    const none = chat({ tool_choice: "none" });
    assert.equal(none.sampling.grammar, undefined);
    assert.equal(none.sampling.json_schema, undefined);
    assert.equal(none.tools, undefined);
  });

  it("auto's grammar: text whose first non-blank character is not '{', or the schema's grammar renamed", () => {
    const schemaGbnf = ['root ::= "{" ws "\\"root\\":" ws rule0 "}" | "[" root "]"', 'rule0 ::= [root"] rootx', "ws ::= [ ]?"].join("\n");
    assert.equal(textOrJsonGrammar(schemaGbnf), [
      "root ::= text-answer | json-answer",
      "text-answer ::= [ \\t\\n\\r]* [^{ \\t\\n\\r] [^\\x00]*",
      'json-answer ::= "{" ws "\\"root\\":" ws rule0 "}" | "[" json-answer "]"',
      'rule0 ::= [root"] rootx',
      "ws ::= [ ]?",
      "",
    ].join("\n"));
    assert.equal(renameRule("a ::= root # root\nroot ::= \"x\"", "root", "r"), "a ::= r # root\nr ::= \"x\"");
  });

  it("the worker API carries json_schema_or_text, only with a json_schema", () => {
    const body = (sampling: object) => ({ session_id: "s1", model: "m", max_tokens: 4, prompt: "hi", sampling });
    assert.equal(parsePrefillRequest(body({ json_schema: { type: "object" }, json_schema_or_text: true })).sampling.json_schema_or_text, true);
    assert.equal(parsePrefillRequest(body({ json_schema: { type: "object" } })).sampling.json_schema_or_text, undefined);
    assert.equal(paramOf(() => parsePrefillRequest(body({ json_schema_or_text: true }))), "sampling.json_schema_or_text");
    assert.equal(paramOf(() => parsePrefillRequest(body({ json_schema: { type: "object" }, json_schema_or_text: 1 }))), "sampling.json_schema_or_text");
  });
});

describe("tool history", () => {
  it("renders assistant calls in the generic format and tool results as one user message", () => {
    const out = lowerToolMessages([
      { role: "user", content: "sum?" },
      { role: "assistant", content: null, tool_calls: [
        { id: "call_1", type: "function", function: { name: "add", arguments: '{"a":1,"b":2}' } },
        { id: "call_2", type: "function", function: { name: "now", arguments: "" } },
      ] },
      { role: "tool", tool_call_id: "call_1", content: "3" },
      { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: "noon" }] },
    ], readToolRequest({ tools: TOOLS, tool_choice: "none" }));
    assert.deepEqual(out, [
      { role: "user", content: "sum?" },
      { role: "assistant", content: '{"tool_calls":[{"name":"add","arguments":{"a":1,"b":2}},{"name":"now","arguments":{}}]}' },
      { role: "user", content: "Tool result (add, call_1): 3\nTool result (now, call_2): noon" },
    ]);
  });

  it("describes the tools in a system message joined to the client's own", () => {
    const req = readToolRequest({ tools: [TOOLS[1]] })!;
    const text = [
      "You can call tools. To call tools, answer with only a JSON object of this form and nothing else:",
      '{"tool_calls":[{"name":"<tool name>","arguments":{<arguments>}}]}',
      'Otherwise answer with text that does not start with "{". Tools:',
      '- now. Arguments schema: {"type":"object"}',
    ].join("\n");
    assert.deepEqual(lowerToolMessages([{ role: "user", content: "hi" }], req), [{ role: "system", content: text }, { role: "user", content: "hi" }]);
    const joined = lowerToolMessages([{ role: "developer", content: "Be brief." }, { role: "user", content: "hi" }], req) as unknown[];
    assert.deepEqual(joined[0], { role: "system", content: `Be brief.\n\n${text}` });
  });

  it("keeps an assistant message with an empty tool_calls list or null content as text", () => {
    assert.deepEqual(lowerToolMessages([{ role: "assistant", content: "ok", tool_calls: [] }, { role: "assistant", content: null }], undefined), [
      { role: "assistant", content: "ok", tool_calls: [] }, { role: "assistant", content: "" },
    ]);
  });

  it("refuses a call whose arguments are not JSON, and a tool message without its call id", () => {
    const call = { role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "add", arguments: "{a" } }] };
    assert.equal(paramOf(() => chat({ messages: [call] })), "messages[0].tool_calls[0].function.arguments");
    assert.equal(paramOf(() => chat({ messages: [{ role: "tool", content: "3" }] })), "messages[0].tool_call_id");
  });
});

describe("tool-call answers", () => {
  const names = new Set(["add", "now"]);
  it("parses calls in the generic format, with call_ ids and arguments as the model's own JSON text", () => {
    assert.deepEqual(parseToolCalls(' { "tool_calls": [ {"name":"add","arguments":{"a":1, "b":2}}, {"name":"now","arguments":{}} ] }', names, ids()), [
      { id: "call_000000000000000000000001", type: "function", function: { name: "add", arguments: '{"a":1, "b":2}' } },
      { id: "call_000000000000000000000002", type: "function", function: { name: "now", arguments: "{}" } },
    ]);
  });

  it("keeps numbers as the model wrote them, and a call without arguments as {}", () => {
    const calls = parseToolCalls('{"tool_calls":[{"name":"add","arguments":{"a":12345678901234567890,"b":1.50e1,"s":"}\\"]"}},{"name":"now"}]}', names, ids())!;
    assert.deepEqual(calls.map((c) => c.function.arguments), ['{"a":12345678901234567890,"b":1.50e1,"s":"}\\"]"}', "{}"]);
  });

  const texts: [string, string][] = [
    ["text", "Once upon a time"],
    ["calls cut short", '{"tool_calls":[{"name":"add","argu'],
    ["an unknown tool", '{"tool_calls":[{"name":"rm","arguments":{}}]}'],
    ["no calls", '{"tool_calls":[]}'],
    ["arguments that are a list", '{"tool_calls":[{"name":"add","arguments":[1]}]}'],
  ];
  for (const [name, text] of texts) it(`keeps ${name} as text`, () => assert.equal(parseToolCalls(text, names, ids()), undefined));

  it("a non-streamed answer with calls has content null and finish_reason tool_calls", () => {
    const meta = { kind: "chat" as const, id: "chatcmpl-1", created: 1, model: "m", includeUsage: false };
    const calls = parseToolCalls('{"tool_calls":[{"name":"now","arguments":{}}]}', names, ids())!;
    assert.deepEqual((openAiResponseBody(meta, "ignored", "stop", usageOf(1, 2, 0), undefined, calls).choices as any)[0], {
      index: 0, message: { role: "assistant", content: null, tool_calls: calls, refusal: null }, logprobs: null, finish_reason: "tool_calls",
    });
  });

  it("streams calls as OpenAI does, while they are generated: id and name once the name closed, then each new piece of arguments", () => {
    const meta = { kind: "chat" as const, id: "c", created: 1, model: "m", includeUsage: false };
    const s = new ToolCallStream(new OpenAiChunks(meta), readToolRequest({ tools: TOOLS, tool_choice: "required" })!, ids());
    const head = 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[';
    const tail = ']},"logprobs":null,"finish_reason":null}]}\n\n';
    assert.equal(s.tokens(['{"tool_calls":[{"name":"ad']), "");
    assert.equal(s.tokens(['d",']), `${head}{"index":0,"id":"call_000000000000000000000001","type":"function","function":{"name":"add","arguments":""}}${tail}`);
    assert.equal(s.tokens(['"arguments":', "{", '"a":12']), `${head}{"index":0,"function":{"arguments":"{\\"a\\":12"}}${tail}`);
    assert.equal(s.tokens(['345678901234567890,"b":2}}', ',{"name":"now","arguments":{}}]}']), [
      `${head}{"index":0,"function":{"arguments":"345678901234567890,\\"b\\":2}"}}${tail}`,
      `${head}{"index":1,"id":"call_000000000000000000000002","type":"function","function":{"name":"now","arguments":""}}${tail}`,
      `${head}{"index":1,"function":{"arguments":"{}"}}${tail}`,
    ].join(""));
    assert.equal(s.end("stop", usageOf(1, 2, 0)), [
      'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}\n\n',
      "data: [DONE]\n\n",
    ].join(""));
  });

  it("calls cut short by max_tokens end with finish_reason length; an answer that never named a call is text", () => {
    const meta = { kind: "chat" as const, id: "c", created: 1, model: "m", includeUsage: false };
    const chunks = new OpenAiChunks(meta);
    const cut = new ToolCallStream(chunks, readToolRequest({ tools: TOOLS, tool_choice: "required" })!, ids());
    assert.notEqual(cut.tokens(['{"tool_calls":[{"name":"add","arguments":{"a":1']), "");
    assert.equal(cut.end("length", usageOf(1, 2, 0)), chunks.end("length", usageOf(1, 2, 0)));
    const early = new ToolCallStream(chunks, readToolRequest({ tools: TOOLS, tool_choice: "required" })!, ids());
    assert.equal(early.tokens(['{"tool_calls":[{"na']), "");
    assert.equal(early.end("length", usageOf(1, 2, 0)), chunks.text(['{"tool_calls":[{"na']) + chunks.end("length", usageOf(1, 2, 0)));
  });

  const partials: [string, { name: string | undefined; args: string; done: boolean }[]][] = [
    ["", []],
    ['{ "tool_calls" : [ { "name" : "a', [{ name: undefined, args: "", done: false }]],
    ['{"tool_calls":[{"name":"a\\"b","arguments":{"x":[1,{"y":"}"}', [{ name: 'a"b', args: '{"x":[1,{"y":"}"}', done: false }]],
    ['{"tool_calls":[{"name":"a","arguments":{"x":1}}, {"name":"b","arguments":{}}]}', [
      { name: "a", args: '{"x":1}', done: true }, { name: "b", args: "{}", done: true },
    ]],
  ];
  for (const [text, calls] of partials) it(`scans ${JSON.stringify(text)} so far`, () => assert.deepEqual(scanCalls(text), calls));

  it("under auto, text streams as it comes once its first character is not '{'", () => {
    const meta = { kind: "chat" as const, id: "c", created: 1, model: "m", includeUsage: false };
    const chunks = new OpenAiChunks(meta);
    const s = new ToolCallStream(chunks, readToolRequest({ tools: TOOLS })!, ids());
    assert.equal(s.tokens([" "]), "");
    assert.equal(s.tokens(["Once"]), chunks.text([" Once"]));
    assert.equal(s.tokens([" upon"]), chunks.text([" upon"]));
    assert.equal(s.end("length", usageOf(1, 2, 0)), chunks.end("length", usageOf(1, 2, 0)));
  });
});

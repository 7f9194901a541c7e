import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nativeCallsGrammar, parseNativeToolCalls, type NativeCallSyntax } from "../../src/protocol/tools/native-tool-calls.js";
import { renameRules } from "../../src/protocol/tools/tool-call-grammar.js";

const HERMES: NativeCallSyntax = { prefix: '<tool_call>\n{"name": "', paramsPrefix: '", "arguments": ', suffix: "}\n</tool_call>", between: "\n" };
const NAMES = new Set(["get_weather", "add"]);
const ids = () => {
  let n = 0;
  return () => String(++n).padStart(24, "0");
};

describe("tool calls in the model's own syntax", () => {
  it("builds text-or-calls with each tool's arguments grammar, its rules renamed, the document end dropped", () => {
    const args = ['root ::= "{" ws "}" "\\n\\n\\n\\n" [\\n]*', "ws ::= [ ]? | rule0", 'rule0 ::= "x"{0,15}'].join("\n");
    const g = nativeCallsGrammar(HERMES, [{ name: "add", argsGbnf: args }, { name: "now", argsGbnf: 'root ::= "{}"' }], { text: true, parallel: true });
    assert.equal(g, [
      "root ::= text-answer | calls",
      "text-answer ::= [ \\t\\n\\r]* [^< \\t\\n\\r] [^\\x00]*",
      'calls ::= call ("\\n" call)*',
      "call ::= call-0 | call-1",
      'call-0 ::= "<tool_call>\\n{\\"name\\": \\"" "add" "\\", \\"arguments\\": " t0-root "}\\n</tool_call>"',
      't0-root ::= "{" t0-ws "}"',
      "t0-ws ::= [ ]? | t0-rule0",
      't0-rule0 ::= "x"{0,15}',
      'call-1 ::= "<tool_call>\\n{\\"name\\": \\"" "now" "\\", \\"arguments\\": " t1-root "}\\n</tool_call>"',
      't1-root ::= "{}"',
      "",
    ].join("\n"));
    const required = nativeCallsGrammar(HERMES, [{ name: "now", argsGbnf: 'root ::= "{}"' }], { text: false, parallel: false });
    assert.equal(required.split("\n").slice(0, 2).join("\n"), "root ::= calls\ncalls ::= call");
  });

  it("renames rules, not literal text, character classes, comments or repetition counts", () => {
    assert.equal(renameRules('a ::= b "b" [b] # b\nb ::= "x"{2}', (n) => `p-${n}`), 'p-a ::= p-b "b" [b] # b\np-b ::= "x"{2}');
  });

  const table: [string, string, { name: string; arguments: string }[] | undefined][] = [
    ["one call", '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>', [{ name: "add", arguments: '{"a": 1, "b": 2}' }]],
    ["two calls, blanks around", ' \n<tool_call>\n{"name": "add", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "}"}}\n</tool_call>\n',
      [{ name: "add", arguments: "{}" }, { name: "get_weather", arguments: '{"city": "}"}' }]],
    ["text", "It is sunny.", undefined],
    ["an unknown tool", '<tool_call>\n{"name": "rm", "arguments": {}}\n</tool_call>', undefined],
    ["cut short", '<tool_call>\n{"name": "add", "arguments": {"a": 1', undefined],
    ["text after the call", '<tool_call>\n{"name": "add", "arguments": {}}\n</tool_call> and more', undefined],
  ];
  for (const [name, text, want] of table) {
    it(`parses: ${name}`, () => {
      const got = parseNativeToolCalls(text, HERMES, NAMES, ids());
      assert.deepEqual(got?.map((c) => c.function), want);
      if (got !== undefined) assert.equal(got[0]!.id, "call_000000000000000000000001");
    });
  }
});

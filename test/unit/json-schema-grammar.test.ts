import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { schemaToGbnf, schemaToGbnfRules } from "../../src/protocol/json-schema/schema-to-gbnf.js";
import { Gbnf } from "../helpers/gbnf-matcher.js";

/** The grammar each keyword compiles to, exactly (rules after `root`, in the order they are made). */
const CHAR = 'char2 ::= ([^"\\\\\\x00-\\x1f] | "\\\\" (["\\\\/bfnrt] | "u" ([0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2})))';
const table: [string, object, string[]][] = [
  ["a string: any characters, escapes without surrogates", { type: "string" }, [CHAR, 'schema1 ::= "\\"" char2* "\\""']],
  ["minLength/maxLength: a bounded repetition", { type: "string", minLength: 2, maxLength: 4 }, [CHAR, 'schema1 ::= "\\"" char2{2,4} "\\""']],
  ["a pattern: its whole matches, unbounded repetition capped", { type: "string", pattern: "^[a-c]+x?$" }, ['schema1 ::= "\\"" ([a-c]{1,33} [x]?) "\\""']],
  ["format uuid", { type: "string", format: "uuid" }, ['schema1 ::= "\\"" ([0-9a-f]{8} [\\-] [0-9a-f]{4} [\\-] [1-8] [0-9a-f]{3} [\\-] [8-9a-b] [0-9a-f]{3} [\\-] [0-9a-f]{12}) "\\""']],
  ["an integer range across zero", { type: "integer", minimum: -5, maximum: 12 }, ['schema1 ::= ("-" [1-5]) | ([0-9] | ("1" [0-2]))']],
  ["exclusiveMinimum 0 (zod's .positive())", { type: "integer", exclusiveMinimum: 0, maximum: 100 }, ['schema1 ::= [1-9] | ([1-9] [0-9]) | "100"']],
  ["a number in [0, 1)", { type: "number", minimum: 0, exclusiveMaximum: 1 }, ['schema1 ::= "0" ("." [0-9]{1,14})?']],
  ["a number in (0, 2]", { type: "number", exclusiveMinimum: 0, maximum: 2 }, ['schema1 ::= ("0" "." [0-9]{0,13} [1-9]) | ("1" ("." [0-9]{1,14})?) | ("2" ("." "0"{1,14})?)']],
  ["an unbounded number: no exponent", { type: "number" }, ['schema1 ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,15})?']],
  ["multipleOf in a small range: the multiples", { type: "integer", multipleOf: 5, minimum: 0, maximum: 20 }, ['schema1 ::= "0" | "5" | "10" | "15" | "20"']],
  ["several types", { type: ["boolean", "null"] }, ['schema1 ::= ("true" | "false") | ("null")']],
  ["enum: each value's compact JSON", { enum: ["a", 1, null] }, ['schema1 ::= "\\"a\\"" | "1" | "null"']],
  ["const", { const: { x: [1] } }, ['schema1 ::= "{\\"x\\":[1]}"']],
  [
    "an object: required members, then optional ones in order",
    { type: "object", properties: { a: { type: "boolean" }, b: { type: "null" } }, required: ["a"], additionalProperties: false },
    ['r2 ::= "true" | "false"', 'r3 ::= "null"', 'schema1 ::= "{" "\\"a\\"" ":" r2 ("," "\\"b\\"" ":" r3)? "}"'],
  ],
  [
    "an object with only optional members: each subset once",
    { type: "object", properties: { a: { type: "boolean" }, b: { type: "null" } } },
    ['r2 ::= "true" | "false"', 'r3 ::= "null"', 'props4 ::= "\\"b\\"" ":" r3', 'props5 ::= "\\"a\\"" ":" r2 ("," "\\"b\\"" ":" r3)? | props4', 'schema1 ::= "{" props5? "}"'],
  ],
  ["minItems/maxItems", { type: "array", items: { type: "boolean" }, minItems: 1, maxItems: 3 }, ['r2 ::= "true" | "false"', 'schema1 ::= "[" r2 ("," r2){0,2} "]"']],
  ["anyOf: an alternation", { anyOf: [{ type: "string", maxLength: 1 }, { type: "null" }] }, [CHAR, 'r3 ::= "\\"" char2? "\\""', 'r4 ::= "null"', "schema1 ::= r3 | r4"]],
  [
    "a recursive $ref",
    { $defs: { n: { type: "object", properties: { next: { anyOf: [{ $ref: "#/$defs/n" }, { type: "null" }] } }, required: ["next"] } }, $ref: "#/$defs/n" },
    ['r3 ::= "null"', "r4 ::= def2 | r3", 'def2 ::= "{" "\\"next\\"" ":" r4 "}"', "schema1 ::= def2"],
  ],
  ["annotations are ignored", { type: "null", title: "t", description: "d", default: null, examples: [null], $schema: "x", $id: "y" }, ['schema1 ::= "null"']],
];

describe("the grammar of each schema keyword", () => {
  for (const [name, schema, rules] of table) {
    it(name, () => assert.equal(schemaToGbnf(schema, "json_schema"), ["root ::= schema1", ...rules].join("\n")));
  }
});

describe("a schema's rules embedded in a larger grammar", () => {
  it("prefixes every rule with its namespace, so that two schemas share one grammar", () => {
    const a = schemaToGbnfRules({ type: "object", properties: { n: { type: "integer", minimum: 1, maximum: 3 } }, required: ["n"] }, "tools[0]", "t0-");
    const b = schemaToGbnfRules({ type: "object", properties: { n: { type: "string", maxLength: 2 } }, required: ["n"] }, "tools[1]", "t1-");
    assert.equal(a.root, "t0-schema1");
    for (const line of [...a.rules.split("\n"), ...b.rules.split("\n")]) assert.match(line, /^t[01]-[a-z]+[0-9]+ ::= /);
    const g = new Gbnf([`root ::= ${a.root} | ${b.root}`, a.rules, b.rules].join("\n"));
    for (const ok of ['{"n":2}', '{"n":"hi"}']) assert.ok(g.matches(ok), ok);
    for (const bad of ['{"n":4}', '{"n":"abc"}', "root"]) assert.ok(!g.matches(bad), bad);
  });
});

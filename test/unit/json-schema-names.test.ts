import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../helpers/processes.js";
import { enforceableSchema } from "../../src/protocol/json-schema-subset.js";
import { ServingError } from "../../src/protocol/serving-error.js";

/**
 * Property and $defs names are data: `__proto__`, `constructor` and friends reach the grammar as
 * the names they are, and a $ref that names nothing the schema defines is refused (400), never
 * compiled into "any JSON".
 */
const parse = (text: string) => enforceableSchema(JSON.parse(text), "json_schema");
// node-llama-cpp's own schema → GBNF compiler (what the engines call), which its package exports do not expose.
const COMPILER = resolve(REPO_ROOT, "node_modules/node-llama-cpp/dist/utils/gbnfJson/getGbnfGrammarForGbnfJsonSchema.js");
const { getGbnfGrammarForGbnfJsonSchema } = (await import(pathToFileURL(COMPILER).href)) as { getGbnfGrammarForGbnfJsonSchema(s: unknown): string };
const grammarOf = (schema: object) => getGbnfGrammarForGbnfJsonSchema(schema);

describe("json_schema names", () => {
  it("keeps a property named __proto__ and puts it in the grammar", () => {
    const s = parse('{"type":"object","properties":{"__proto__":{"type":"string"},"a":{"type":"integer"}},"required":["__proto__","a"]}');
    assert.deepEqual(Object.keys((s as any).properties), ["__proto__", "a"]);
    assert.equal(Object.getPrototypeOf((s as any).properties), Object.prototype, "the copy's prototype is untouched");
    assert.match(grammarOf(s), /\\"__proto__\\"/);
  });

  it("keeps a $defs entry named __proto__ and resolves a $ref to it", () => {
    const s = parse('{"type":"object","properties":{"b":{"$ref":"#/$defs/__proto__"}},"required":["b"],"$defs":{"__proto__":{"type":"integer"}}}');
    assert.deepEqual(Object.keys((s as any).$defs), ["__proto__"]);
    const g = grammarOf(s);
    assert.match(g, /integer-number-rule/);
    assert.doesNotMatch(g, /null-rule/);
  });

  it("keeps $defs named like Object's members (constructor, toString)", () => {
    const s = parse('{"$defs":{"constructor":{"type":"boolean"},"toString":{"const":"x"}},"type":"object","properties":{"c":{"$ref":"#/$defs/constructor"},"t":{"$ref":"#/$defs/toString"}},"required":["c","t"]}');
    const g = grammarOf(s);
    assert.match(g, /"true"|true/);
    assert.match(g, /\\"x\\"/);
  });

  for (const [name, ref] of [
    ["a name of Object's prototype that the schema does not define", "#/$defs/constructor"],
    ["__proto__ when the schema does not define it", "#/$defs/__proto__"],
    ["a name no $defs holds", "#/$defs/missing"],
  ] as const) {
    it(`refuses a $ref to ${name}`, () => {
      assert.throws(
        () => parse(JSON.stringify({ type: "object", properties: { a: { $ref: ref } }, $defs: { other: { type: "string" } } })),
        (e: unknown) => e instanceof ServingError && e.code === "invalid_field" && /\$ref/.test(e.message),
      );
    });
  }
});

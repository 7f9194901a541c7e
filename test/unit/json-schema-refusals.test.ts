import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { ServingError } from "../../src/protocol/serving-error.js";
import { enforceableSchema } from "../../src/protocol/json-schema-subset.js";

/**
 * What remains refused names the keyword (or construct) and its JSON pointer; what zod 4 writes for
 * everyday schemas (the failing case: .int() → ±9007199254740991, z.iso.date() → pattern)
 * is accepted.
 */
const PARAM = "response_format.json_schema.schema";
const refuse = (schema: object) => {
  try {
    enforceableSchema(JSON.parse(JSON.stringify(schema)), PARAM);
  } catch (e) {
    assert.ok(e instanceof ServingError && e.code === "invalid_field" && e.param === PARAM, String(e));
    return e.message;
  }
  return assert.fail(`accepted ${JSON.stringify(schema)}`);
};

describe("schema refusals name the keyword and its JSON pointer", () => {
  const cases: [string, object, string][] = [
    ["uniqueItems", { type: "object", properties: { tags: { type: "array", uniqueItems: true } } }, "uses 'uniqueItems' at /properties/tags/uniqueItems"],
    ["allOf", { allOf: [{ type: "string" }] }, "uses 'allOf' at /allOf"],
    ["not", { type: "object", properties: { a: { not: { type: "null" } } } }, "uses 'not' at /properties/a/not"],
    ["patternProperties", { type: "object", patternProperties: { "^a": {} } }, "uses 'patternProperties' at /patternProperties"],
    ["oneOf with overlapping branches", { oneOf: [{ type: "integer" }, { type: "number" }] }, "may overlap (use anyOf) at /oneOf/1"],
    ["$ref beside another keyword", { $defs: { a: { type: "string" } }, $ref: "#/$defs/a", type: "string" }, "combines '$ref' with 'type' at /type"],
    ["enum beside a length", { enum: ["a", "bb"], maxLength: 1 }, "combines 'enum'/'const' with 'maxLength' at /maxLength"],
    ["a format beside a length", { type: "string", format: "date", minLength: 10 }, "combines 'format' with 'minLength'/'maxLength' at /format"],
    ["an unknown format", { type: "string", format: "iri" }, "uses format 'iri' at /format"],
    ["a fractional multipleOf", { type: "number", multipleOf: 0.01 }, "uses a fractional 'multipleOf' (0.01) at /multipleOf"],
    ["a fractional number bound", { type: "number", exclusiveMaximum: 2.5 }, "has a fractional 'exclusiveMaximum' (2.5) on a number"],
    ["a pointer token with '/' and '~'", { type: "object", properties: { "a/b~c": { type: "string", pattern: "(?!x)" } } }, "at /properties/a~1b~0c/pattern"],
    ["an outside $ref", { $ref: "other.json#/x" }, "not '#' or '#/$defs/<name>' at /$ref"],
    ["an empty integer range", { type: "integer", minimum: 5, maximum: 4 }, "has bounds that no integer satisfies at the root"],
  ];
  for (const [name, schema, message] of cases) {
    it(`refuses ${name}`, () => assert.ok(refuse(schema).includes(message), refuse(schema)));
  }

  it("accepts what zod 4 writes for .int(), .positive(), z.iso.date(), z.email(), z.uuid(), enums, nullable, nested arrays", () => {
    const schema = z.toJSONSchema(
      z.object({
        n: z.number().int(),
        p: z.number().int().positive(),
        d: z.iso.date(),
        dt: z.iso.datetime(),
        e: z.email(),
        u: z.uuid(),
        k: z.enum(["a", "b"]),
        o: z.string().max(3).nullable(),
        rows: z.array(z.object({ x: z.number().min(0).max(5), t: z.iso.time() })).min(1).max(3),
      }),
    );
    assert.doesNotThrow(() => enforceableSchema(schema as never, PARAM));
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { schemaToGbnf } from "../../src/protocol/json-schema/schema-to-gbnf.js";
import { Gbnf } from "../helpers/gbnf-matcher.js";
import { asRequestBody, RECURSIVE_SCHEMA, schemaArbitrary } from "../helpers/schema-arbitrary.js";
import { schemaOracle } from "../helpers/schema-oracle.js";

/**
 * Random schemas from the subset compile, and every string drawn from the grammar (random walks of
 * our own GBNF interpreter, seeded) parses as JSON and validates with Ajv: the grammar never lets
 * out a value the schema refuses. The model tests do the same with real sampling.
 */
const oracle = schemaOracle();

describe("random schemas: every output of the grammar validates", () => {
  it("holds for 300 random schemas, 20 draws each (seeded)", () => {
    fc.assert(
      fc.property(schemaArbitrary, fc.integer({ min: 1, max: 2 ** 30 }), (raw, seed) => {
        const schema = asRequestBody(raw);
        const g = new Gbnf(schemaToGbnf(schema, "s"));
        const valid = oracle(schema);
        let s = seed;
        const rng = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
        for (let i = 0; i < 20; i++) {
          const text = g.sample(rng);
          assert.ok(g.matches(text), `the matcher accepts its own sample ${text}`);
          assert.ok(valid(JSON.parse(text)), `${text} does not validate against ${JSON.stringify(schema)}`);
        }
      }),
      { seed: 1313, numRuns: 300 },
    );
  });

  it("holds for a recursive $ref", () => {
    const g = new Gbnf(schemaToGbnf(RECURSIVE_SCHEMA, "s"));
    const valid = oracle(RECURSIVE_SCHEMA);
    let s = 5;
    const rng = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 100; i++) {
      const text = g.sample(rng);
      assert.ok(valid(JSON.parse(text)), text);
    }
  });
});

describe("the less common keywords: every drawn output validates", () => {
  const schemas: object[] = [
    { type: "object", properties: { a: { type: "boolean" }, b: { type: "null" }, c: { type: "integer", minimum: 0, maximum: 3 } }, minProperties: 2, maxProperties: 2 },
    { type: "array", prefixItems: [{ type: "integer", minimum: 0, maximum: 9 }, { const: "x" }], items: { type: "boolean" }, minItems: 1, maxItems: 4 },
    { type: "array", prefixItems: [{ type: "null" }], items: false },
    { type: "integer", format: "int32" },
    { type: "number", format: "int64", minimum: -5 },
    { type: "integer", multipleOf: 7 },
    { type: "number", multipleOf: 4, minimum: -40, maximum: 40 },
    { oneOf: [{ type: "string", maxLength: 2 }, { type: "integer", minimum: 0, maximum: 5 }, { type: "null" }] },
    { type: "object", required: ["free"], properties: {} },
    { type: "object", properties: { a: { type: "string", maxLength: 3 } }, required: ["a"], additionalProperties: { type: "integer" } },
  ];
  for (const schema of schemas) {
    it(JSON.stringify(schema), () => {
      const g = new Gbnf(schemaToGbnf(schema, "s"));
      const valid = oracle(schema);
      let s = 11;
      const rng = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      for (let i = 0; i < 200; i++) {
        const text = g.sample(rng);
        assert.ok(valid(JSON.parse(text)), `${text} does not validate against ${JSON.stringify(schema)}`);
      }
    });
  }
});

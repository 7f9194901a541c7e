import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { schemaToGbnf } from "../../src/protocol/json-schema/schema-to-gbnf.js";
import { Gbnf } from "../helpers/gbnf-matcher.js";
import { schemaOracle } from "../helpers/schema-oracle.js";

/**
 * Integer and number bounds against Ajv: for many ranges, every candidate text the grammar accepts
 * is valid to Ajv, and every canonical integer Ajv accepts is accepted by the grammar (integer
 * ranges are exact). Candidates: the bounds and their neighbours, zero, random values; texts
 * in non-canonical spellings are never accepted. Seeded and bounded.
 */
const oracle = schemaOracle();
const SAFE = 9007199254740991n;

function candidates(lo: bigint | undefined, hi: bigint | undefined, extra: bigint[]): bigint[] {
  const out = new Set<bigint>([0n, 1n, -1n, ...extra]);
  for (const b of [lo, hi]) if (b !== undefined) for (const d of [-2n, -1n, 0n, 1n, 2n]) out.add(b + d);
  return [...out];
}

describe("integer ranges are exact digit grammars", () => {
  const ranges: [number | undefined, number | undefined][] = [
    [1, 10], [0, 0], [-5, 12], [-100, -7], [7, 7], [0, 9], [10, 99], [19, 1000], [-9007199254740991, 9007199254740991],
    [0, 9007199254740991], [123456, undefined], [undefined, -42], [undefined, 0], [-1, undefined], [999, 1001], [1, 1e6],
  ];
  for (const [min, max] of ranges) {
    it(`[${min ?? "-inf"}, ${max ?? "inf"}]`, () => {
      const schema = { type: "integer", ...(min !== undefined && { minimum: min }), ...(max !== undefined && { maximum: max }) };
      const g = new Gbnf(schemaToGbnf(schema, "s"));
      const valid = oracle(schema);
      const lo = min === undefined ? undefined : BigInt(min);
      const hi = max === undefined ? undefined : BigInt(max);
      for (const v of candidates(lo, hi, [SAFE, -SAFE, 12345n, -98765n])) {
        const text = v.toString();
        const expected = valid(Number(text)) && v >= -SAFE && v <= SAFE;
        assert.equal(g.matches(text), expected, `${text} in ${JSON.stringify(schema)}`);
      }
      for (const bad of ["01", "-0", "+1", "1.0", "1e2", " 1", ""]) assert.equal(g.matches(bad), false, bad);
    });
  }

  it("agrees with Ajv on random ranges and random values (seeded)", () => {
    const big = fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n });
    fc.assert(
      fc.property(fc.tuple(big, big), fc.array(big, { maxLength: 20 }), fc.boolean(), fc.boolean(), ([a, b], vs, xmin, xmax) => {
        const lo = a < b ? a : b;
        const hi = a < b ? b : a;
        if ((xmin || xmax) && hi - lo < 3n) return;
        const schema = { type: "integer", [xmin ? "exclusiveMinimum" : "minimum"]: Number(lo), [xmax ? "exclusiveMaximum" : "maximum"]: Number(hi) };
        // Bounds are read as doubles (what a client's JSON holds); outputs stay within ±(2^53 − 1).
        const loD = BigInt(Number(lo)) + (xmin ? 1n : 0n);
        const hiD = BigInt(Number(hi)) - (xmax ? 1n : 0n);
        if (loD > SAFE || hiD < -SAFE) return;
        const g = new Gbnf(schemaToGbnf(schema, "s"));
        const valid = oracle(schema);
        for (const v of candidates(loD, hiD, vs)) {
          const inRange = v >= loD && v <= hiD && v >= -SAFE && v <= SAFE;
          assert.equal(g.matches(v.toString()), inRange, `${v} in ${JSON.stringify(schema)}`);
          if (inRange) assert.ok(valid(Number(v)), `Ajv refuses ${v} for ${JSON.stringify(schema)}`);
        }
      }),
      { seed: 13, numRuns: 150 },
    );
  });
});

describe("number bounds are exact by construction", () => {
  const schemas: object[] = [
    { type: "number", minimum: 0, maximum: 5 },
    { type: "number", exclusiveMinimum: 0 },
    { type: "number", exclusiveMinimum: -3, exclusiveMaximum: 3 },
    { type: "number", maximum: -2 },
    { type: "number", exclusiveMaximum: 0 },
    { type: "number", minimum: 7, maximum: 7 },
    { type: "number", minimum: -1000000, maximum: 1000000 },
    { type: "number", exclusiveMinimum: 0, maximum: 9007199254740991 },
  ];
  const texts = ["0", "-0", "0.0", "0.5", "-0.5", "5", "5.0", "5.000001", "4.999999", "3", "-3", "2.9", "-2.9", "-2", "-2.0", "-2.1", "7", "7.00", "7.01", "6.99", "1000000", "1000000.5", "-1000000", "-1000000.1", "9007199254740991", "9007199254740990.5", "1e3", "+1", "01", ".5", "5."];
  for (const schema of schemas) {
    it(JSON.stringify(schema), () => {
      const g = new Gbnf(schemaToGbnf(schema, "s"));
      const valid = oracle(schema);
      let accepted = 0;
      for (const t of texts) {
        if (!g.matches(t)) continue;
        accepted++;
        assert.ok(valid(JSON.parse(t)), `${t} is accepted by the grammar but not by Ajv for ${JSON.stringify(schema)}`);
      }
      assert.ok(accepted > 0);
      let seed = 7;
      const rng = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      for (let i = 0; i < 300; i++) {
        const t = g.sample(rng);
        assert.ok(valid(JSON.parse(t)), `sample ${t} for ${JSON.stringify(schema)}`);
      }
    });
  }

  it("keeps numbers within ±(2^53 − 1) where a bound lies beyond, so that no output rounds across it", () => {
    const schema = { type: "number", exclusiveMaximum: 1e17 };
    const g = new Gbnf(schemaToGbnf(schema, "s"));
    assert.equal(g.matches("99999999999999999"), false);
    assert.equal(g.matches("9007199254740991"), true);
    assert.equal(g.matches("9007199254740992"), false);
    assert.throws(() => schemaToGbnf({ type: "integer", minimum: 1e17 }, "s"), /beyond/);
  });

  it("refuses a fractional bound on a number, naming the keyword and pointer", () => {
    assert.throws(() => schemaToGbnf({ type: "object", properties: { x: { type: "number", minimum: 0.5 } } }, "s"), /'minimum'.*at \/properties\/x/);
  });
});

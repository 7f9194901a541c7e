import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { schemaToGbnf } from "../../src/protocol/json-schema/schema-to-gbnf.js";
import { FORMAT_REGEX, PATTERNS_IMPLIED_BY_FORMAT } from "../../src/protocol/json-schema/string-formats.js";
import { ServingError } from "../../src/protocol/serving-error.js";
import { Gbnf } from "../helpers/gbnf-matcher.js";
import { schemaOracle } from "../helpers/schema-oracle.js";

/**
 * Patterns and formats: strings drawn from each grammar (seeded) are valid to Ajv (pattern and
 * ajv-formats), the patterns zod 4 writes beside a format hold for the whole format grammar, and
 * every construct outside the regex subset is refused naming the construct and the pointer.
 */
const oracle = schemaOracle();

function lcg(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

function drawValid(schema: object, n: number): string[] {
  const g = new Gbnf(schemaToGbnf(schema, "s"));
  const valid = oracle(schema);
  const rng = lcg(42);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const text = g.sample(rng);
    assert.ok(valid(JSON.parse(text)), `${text} does not validate against ${JSON.stringify(schema)}`);
    out.push(text);
  }
  return out;
}

describe("string patterns and formats", () => {
  const patterns = [
    "^[a-c]+x?$", "^\\d{3}-\\d{4}$", "^(foo|bar)+baz$", "^[^\\s]{2,5}$", "ab*c", "^[A-Z][a-z]*( [A-Z][a-z]*)*$",
    "^\\w+@\\w+\\.com$", "^(?:[01]\\d|2[0-3]):[0-5]\\d(?::[0-5]\\d(?:\\.\\d+)?)?$", "^[\\x41-\\x43\\u0394]{1,3}$", '^["\\\\]{2}$',
    "^.{0,4}$", "^(a|b|)$", "^[\\-+]?\\d+$", "^(?<year>\\d{4})$",
  ];
  for (const pattern of patterns) {
    it(`pattern ${pattern}`, () => void drawValid({ type: "string", pattern }, 200));
  }

  for (const format of Object.keys(FORMAT_REGEX)) {
    it(`format ${format}, and the patterns zod writes beside it`, () => {
      const texts = drawValid({ type: "string", format }, 200);
      for (const p of PATTERNS_IMPLIED_BY_FORMAT[format] ?? []) {
        const re = new RegExp(p, "u");
        for (const t of texts) assert.ok(re.test(JSON.parse(t)), `${t} does not match zod's ${format} pattern`);
      }
    });
  }

  it("knows the patterns this zod writes (date, date-time, email, uuid, ipv4, ipv6, duration)", () => {
    const s = z.toJSONSchema(z.object({ d: z.iso.date(), dt: z.iso.datetime(), e: z.email(), u: z.uuid(), i4: z.ipv4(), i6: z.ipv6(), du: z.iso.duration() })) as any;
    for (const p of Object.values(s.properties) as { format: string; pattern: string }[]) {
      assert.ok((PATTERNS_IMPLIED_BY_FORMAT[p.format] ?? []).includes(p.pattern), `zod's pattern for ${p.format} is not in the table`);
    }
    assert.doesNotThrow(() => schemaToGbnf(s, "s"));
  });

  const refusals: [string, string, RegExp][] = [
    ["a lookahead", "^(?=a)a$", /lookaround/],
    ["a negative lookbehind", "(?<!a)b", /lookaround/],
    ["a backreference", "^(a)\\1$", /backreference/],
    ["a word boundary", "\\bword\\b", /word boundary/],
    ["a Unicode property", "^\\p{L}+$", /escape '\\p'/],
    ["an anchor inside the pattern", "a^b", /anchor '\^'/],
    ["'$' before the end", "a$b", /anchor '\$'/],
    ["a huge repetition", "a{1,1000}", /repetition count/],
  ];
  for (const [name, pattern, construct] of refusals) {
    it(`refuses ${name}, naming it and the pointer`, () => {
      assert.throws(
        () => schemaToGbnf({ type: "object", properties: { p: { type: "string", pattern } } }, "response_format.json_schema.schema"),
        (e: unknown) => e instanceof ServingError && e.code === "invalid_field" && construct.test(e.message) && /at \/properties\/p\/pattern/.test(e.message),
      );
    });
  }

  it("refuses a pattern beside a format that zod did not write", () => {
    assert.throws(() => schemaToGbnf({ type: "string", format: "email", pattern: "^a" }, "s"), /combines 'pattern' with format 'email'.* at \/pattern/);
  });
});

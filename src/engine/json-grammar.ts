import { schemaToGbnf } from "../protocol/json-schema/schema-to-gbnf.js";
import type { SamplingParams } from "../protocol/sampling.js";
import { textOrJsonGrammar } from "../protocol/tools/tool-call-grammar.js";

/**
 * Used for `json_object` (node-llama-cpp's "any JSON" grammar); schemas with keywords go through our
 * own compiler below. node-llama-cpp 3.21.1 writes JSON numbers with an optional exponent of up to 16
 * digits: an `integer` may come out as `23E5784949` (Infinity in any JSON parser) or `1e-5` (not an
 * integer), a `number` as `1e999`. Such output is valid to the grammar but fails the schema where it
 * is used, so the two number rules are tightened: integers get no exponent, fractional numbers an
 * exponent of at most two digits (always finite). Other grammars pass through unchanged.
 */
const INTEGER_RULE = "integer-number-rule ::= ";
const FRACTIONAL_RULE = "fractional-number-rule ::= ";
const LOOSE_EXPONENT = '([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?';

export function tightenJsonNumbers(gbnf: string): string {
  return gbnf
    .split("\n")
    .map((line) => {
      if (line.startsWith(INTEGER_RULE)) return line.replace(` ${LOOSE_EXPONENT}`, "");
      if (line.startsWith(FRACTIONAL_RULE)) return line.replace(LOOSE_EXPONENT, "([eE] [-+]? [0-9]{1,2})?");
      return line;
    })
    .join("\n");
}

/**
 * The grammar of a request's JSON schema: our own compiler (protocol/json-schema/) for a schema
 * with keywords, node-llama-cpp's "any JSON" grammar (numbers tightened) for `{}` (json_object).
 */
export function jsonSchemaGrammar(schema: object, anyJson: () => string): string {
  return Object.keys(schema).length === 0 ? tightenJsonNumbers(anyJson()) : schemaToGbnf(schema, "json_schema");
}

/** A schema's GBNF, with the text alternative when the request allows text instead (tool_choice "auto"). */
export function withTextAnswer(s: SamplingParams, schemaGbnf: string): string {
  return s.json_schema_or_text === true ? textOrJsonGrammar(schemaGbnf) : schemaGbnf;
}

/** The cache key of a request's grammar: its GBNF, or its schema and whether text may answer instead. */
export function grammarKey(s: SamplingParams): string {
  if (s.grammar !== undefined) return `g:${s.grammar}`;
  return `${s.json_schema_or_text === true ? "jt" : "j"}:${JSON.stringify(s.json_schema)}`;
}

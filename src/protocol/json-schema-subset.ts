import type { JsonObject } from "./validate.js";
import { schemaToGbnf } from "./json-schema/schema-to-gbnf.js";

/**
 * The part of JSON Schema a grammar enforces while tokens are generated: OpenAI's Structured
 * Outputs subset, compiled by our own converter (json-schema/schema-to-gbnf.ts), which refuses
 * anything else with a 400 naming the keyword and its JSON pointer, so that "the output matches
 * the schema" holds for every schema that is accepted. Compiling here rejects a bad schema before
 * it is routed; the engine compiles the same schema again into the grammar it samples with.
 *
 * Returns a copy. Names are data: a property or `$defs` name such as `__proto__` or `constructor`
 * stays an own property (JSON.parse defines every key as its own), and every `$ref` must name a
 * `$defs` entry the schema defines, else 400.
 */
export function enforceableSchema(schema: JsonObject, param: string): JsonObject {
  schemaToGbnf(schema, param);
  return JSON.parse(JSON.stringify(schema)) as JsonObject;
}

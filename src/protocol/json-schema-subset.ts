import { ServingError } from "../common/serving-error.js";
import type { JsonObject } from "./validate.js";

/**
 * The part of JSON Schema a grammar can enforce while tokens are generated (what node-llama-cpp's
 * schema-to-GBNF compiler implements): types, const, enum, oneOf/anyOf, string lengths and the
 * date/time formats, object properties/required/additionalProperties/property counts, array
 * items/prefixItems/item counts, and `$ref` into `$defs`. A schema that uses any other constraint
 * (pattern, minimum, uniqueItems, …) is refused with 400 rather than silently not enforced, so
 * that "the output matches the schema" holds for every schema that is accepted. Annotations
 * (title, description, default, examples, $schema, $id, $comment) are allowed and ignored.
 *
 * Returns a copy in the compiler's terms (`anyOf` → `oneOf`: both compile to an alternation, and
 * an alternation's output satisfies anyOf).
 */
const ANNOTATIONS = new Set(["title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly"]);
const KEYWORDS = new Set([
  "type", "const", "enum", "oneOf", "anyOf", "minLength", "maxLength", "format",
  "properties", "required", "additionalProperties", "minProperties", "maxProperties",
  "items", "prefixItems", "minItems", "maxItems", "$defs", "$ref",
]);
const TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
const FORMATS = new Set(["date-time", "date", "time"]);
const MAX_DEPTH = 64;

export function enforceableSchema(schema: JsonObject, param: string): JsonObject {
  return walk(schema, "", param, 0) as JsonObject;
}

function walk(node: unknown, at: string, param: string, depth: number): unknown {
  const fail = (why: string): never => {
    throw new ServingError("invalid_field", `'${param}' ${why} at ${at === "" ? "the root" : at}; it cannot be enforced during generation`, { param });
  };
  if (depth > MAX_DEPTH) fail(`nests deeper than ${MAX_DEPTH} levels`);
  if (typeof node !== "object" || node === null || Array.isArray(node)) fail("has a schema that is not an object");
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node as JsonObject)) {
    if (ANNOTATIONS.has(k)) {
      if (k === "description") out[k] = v;
      continue;
    }
    if (!KEYWORDS.has(k)) fail(`uses '${k}'`);
    const here = `${at}/${k}`;
    switch (k) {
      case "type": {
        const types = Array.isArray(v) ? v : [v];
        if (types.length === 0 || !types.every((t) => typeof t === "string" && TYPES.has(t))) fail(`has an unknown type`);
        if (Array.isArray(v) && v.some((t) => t === "object" || t === "array")) fail("lists object or array among several types (use oneOf)");
        out[k] = v;
        break;
      }
      case "format":
        if (typeof v !== "string" || !FORMATS.has(v)) fail(`uses format '${String(v)}'`);
        out[k] = v;
        break;
      case "oneOf":
      case "anyOf":
        if (!Array.isArray(v) || v.length === 0) fail(`has an empty or invalid ${k}`);
        out.oneOf = (v as unknown[]).map((s, i) => walk(s, `${here}/${i}`, param, depth + 1));
        break;
      case "prefixItems":
        if (!Array.isArray(v)) fail("has prefixItems that are not a list");
        out[k] = (v as unknown[]).map((s, i) => walk(s, `${here}/${i}`, param, depth + 1));
        break;
      case "properties":
      case "$defs": {
        if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`has ${k} that are not an object`);
        const m: JsonObject = {};
        for (const [name, s] of Object.entries(v as JsonObject)) m[name] = walk(s, `${here}/${name}`, param, depth + 1);
        out[k] = m;
        break;
      }
      case "items":
        out[k] = walk(v, here, param, depth + 1);
        break;
      case "additionalProperties":
        out[k] = typeof v === "boolean" ? v : walk(v, here, param, depth + 1);
        break;
      case "$ref":
        if (typeof v !== "string" || !/^#\/\$defs\/[^/]+$/.test(v)) fail("has a $ref that is not '#/$defs/<name>'");
        out[k] = v;
        break;
      default:
        out[k] = v;
    }
  }
  return out;
}

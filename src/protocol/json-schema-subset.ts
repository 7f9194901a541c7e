import { ServingError } from "./serving-error.js";
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
 *
 * Names are data: a property or `$defs` name such as `__proto__` or `constructor` is copied as an
 * own property (a plain assignment of `__proto__` would set the copy's prototype and drop it), and
 * every `$ref` must name a `$defs` entry the schema defines as its own (the compiler looks names up
 * on a plain object, where `constructor` would find Object's and a missing name silently means
 * "any JSON"), else 400.
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
  const names: Names = { defs: new Set(), refs: [] };
  const out = walk(schema, "", param, 0, names) as JsonObject;
  for (const { name, at } of names.refs) {
    if (!names.defs.has(name)) {
      throw new ServingError("invalid_field", `'${param}' has a $ref to '${name}', which no $defs defines, at ${at}`, { param });
    }
  }
  return out;
}

/** `$defs` names the schema defines, and the `$ref`s that must find one. */
interface Names {
  defs: Set<string>;
  refs: { name: string; at: string }[];
}

/** Sets an own, enumerable property whatever its name (`__proto__` included). */
function setOwn(o: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function walk(node: unknown, at: string, param: string, depth: number, names: Names): unknown {
  const fail = (why: string): never => {
    throw new ServingError("invalid_field", `'${param}' ${why} at ${at === "" ? "the root" : at}; it cannot be enforced during generation`, { param });
  };
  if (depth > MAX_DEPTH) fail(`nests deeper than ${MAX_DEPTH} levels`);
  if (typeof node !== "object" || node === null || Array.isArray(node)) fail("has a schema that is not an object");
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node as JsonObject)) {
    if (ANNOTATIONS.has(k)) {
      if (k === "description") setOwn(out, k, v);
      continue;
    }
    if (!KEYWORDS.has(k)) fail(`uses '${k}'`);
    const here = `${at}/${k}`;
    switch (k) {
      case "type": {
        const types = Array.isArray(v) ? v : [v];
        if (types.length === 0 || !types.every((t) => typeof t === "string" && TYPES.has(t))) fail(`has an unknown type`);
        if (Array.isArray(v) && v.some((t) => t === "object" || t === "array")) fail("lists object or array among several types (use oneOf)");
        setOwn(out, k, v);
        break;
      }
      case "format":
        if (typeof v !== "string" || !FORMATS.has(v)) fail(`uses format '${String(v)}'`);
        setOwn(out, k, v);
        break;
      case "oneOf":
      case "anyOf":
        if (!Array.isArray(v) || v.length === 0) fail(`has an empty or invalid ${k}`);
        setOwn(out, "oneOf", (v as unknown[]).map((s, i) => walk(s, `${here}/${i}`, param, depth + 1, names)));
        break;
      case "prefixItems":
        if (!Array.isArray(v)) fail("has prefixItems that are not a list");
        setOwn(out, k, (v as unknown[]).map((s, i) => walk(s, `${here}/${i}`, param, depth + 1, names)));
        break;
      case "properties":
      case "$defs": {
        if (typeof v !== "object" || v === null || Array.isArray(v)) fail(`has ${k} that are not an object`);
        const m: JsonObject = {};
        for (const [name, s] of Object.entries(v as JsonObject)) {
          if (k === "$defs") names.defs.add(name);
          setOwn(m, name, walk(s, `${here}/${name}`, param, depth + 1, names));
        }
        setOwn(out, k, m);
        break;
      }
      case "items":
        setOwn(out, k, walk(v, here, param, depth + 1, names));
        break;
      case "additionalProperties":
        setOwn(out, k, typeof v === "boolean" ? v : walk(v, here, param, depth + 1, names));
        break;
      case "$ref":
        if (typeof v !== "string" || !/^#\/\$defs\/[^/]+$/.test(v)) fail("has a $ref that is not '#/$defs/<name>'");
        names.refs.push({ name: (v as string).slice("#/$defs/".length), at: here });
        setOwn(out, k, v);
        break;
      default:
        setOwn(out, k, v);
    }
  }
  return out;
}

import { enforceableSchema } from "../json-schema-subset.js";
import type { JsonObject } from "../validate.js";
import type { ToolDef, ToolRequest } from "./tool-request.js";

/**
 * The JSON schema of an answer made only of tool calls, in the generic format
 * `{"tool_calls":[{"name":"<tool>","arguments":{…}}, …]}`: each item is one of the offered tools
 * (all of them for `required`, the named one for a named `tool_choice`) with its `parameters` as
 * the arguments' schema, so the grammar compiled from it makes every call's arguments validate.
 * `parallel_tool_calls: false` allows exactly one call.
 *
 * Each tool's `$defs` move to the root under `<tool index>.<name>` (a `$ref` points at the root's
 * `$defs`), with that tool's `$ref`s rewritten to match. The schema converter is called in exactly
 * one place, `checkedParameters`, so that it can be swapped as a whole.
 */
export function toolCallSchema(req: ToolRequest): JsonObject {
  const offered = typeof req.choice === "object" ? req.tools.filter((t) => t.name === (req.choice as { name: string }).name) : req.tools;
  const defs: JsonObject = {};
  const items = offered.map((t) => {
    const i = req.tools.indexOf(t);
    const params = hoistDefs(checkedParameters(t, i), `t${i}.`, defs);
    return {
      type: "object",
      properties: { name: { const: t.name }, arguments: params },
      required: ["name", "arguments"],
      additionalProperties: false,
    };
  });
  // anyOf, not oneOf: the branches are disjoint by their `name` const, and the compiler takes oneOf only over disjoint types.
  const calls: JsonObject = { type: "array", items: items.length === 1 ? items[0] : { anyOf: items }, minItems: 1 };
  if (!req.parallel) calls.maxItems = 1;
  const schema: JsonObject = { type: "object", properties: { tool_calls: calls }, required: ["tool_calls"], additionalProperties: false };
  if (Object.keys(defs).length > 0) schema.$defs = defs;
  return schema;
}

/** A tool's parameters in the converter's terms; a schema it cannot enforce is a 400 naming the tool. */
export function checkedParameters(t: ToolDef, index: number): JsonObject {
  if (t.parameters === undefined) return { type: "object" };
  return enforceableSchema(t.parameters, `tools[${index}].function.parameters`);
}

/** Moves `schema.$defs` into `defs` under `prefix + name`, rewriting `#/$defs/<name>` refs. */
function hoistDefs(schema: JsonObject, prefix: string, defs: JsonObject): JsonObject {
  if (schema.$defs === undefined) return schema;
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (typeof node !== "object" || node === null) return node;
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(node as JsonObject)) {
      const value = k === "$ref" && typeof v === "string" && v.startsWith("#/$defs/") ? `#/$defs/${prefix}${v.slice(8)}` : rewrite(v);
      Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  const { $defs, ...rest } = rewrite(schema) as JsonObject;
  for (const [name, s] of Object.entries($defs as JsonObject)) {
    Object.defineProperty(defs, prefix + name, { value: s, enumerable: true, writable: true, configurable: true });
  }
  return rest;
}

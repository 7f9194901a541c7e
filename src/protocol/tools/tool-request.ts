import { ServingError } from "../serving-error.js";
import type { JsonObject } from "../validate.js";

/**
 * OpenAI's `tools`, `tool_choice` and `parallel_tool_calls`, read into one value. Only function
 * tools exist (OpenAI's only type); a name follows OpenAI's rule (letters, digits, `_`, `-`, at
 * most 64). `parameters` is kept as sent: the grammar builder checks it (tool-call-schema.ts).
 */
export interface ToolDef {
  name: string;
  description: string | undefined;
  /** A JSON schema for the arguments object; absent means any object. */
  parameters: JsonObject | undefined;
}

/** `auto`: text or calls; `required`: at least one call; `{ name }`: calls of that function only. */
export type ToolChoice = "auto" | "none" | "required" | { name: string };

export interface ToolRequest {
  tools: ToolDef[];
  choice: ToolChoice;
  /** False: at most one call per answer. OpenAI's default is true. */
  parallel: boolean;
}

export const MAX_TOOLS = 128;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Reads the three fields; undefined when the request has no tools (or an empty list). */
export function readToolRequest(o: JsonObject): ToolRequest | undefined {
  if (o.functions !== undefined && o.functions !== null) fail("functions", "'functions' is deprecated and not supported; use 'tools'");
  if (o.function_call !== undefined && o.function_call !== null) fail("function_call", "'function_call' is deprecated and not supported; use 'tool_choice'");
  const tools = readTools(o.tools);
  const parallel = o.parallel_tool_calls ?? true;
  if (typeof parallel !== "boolean") fail("parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
  const choiceRaw = o.tool_choice;
  if (tools === undefined) {
    if (choiceRaw !== undefined && choiceRaw !== null && choiceRaw !== "none" && choiceRaw !== "auto") {
      fail("tool_choice", "'tool_choice' needs 'tools'");
    }
    return undefined;
  }
  return { tools, choice: readChoice(choiceRaw, tools), parallel: parallel as boolean };
}

function readTools(v: unknown): ToolDef[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) fail("tools", "'tools' must be a list");
  const list = v as unknown[];
  if (list.length === 0) return undefined;
  if (list.length > MAX_TOOLS) fail("tools", `'tools' holds more than ${MAX_TOOLS} tools`);
  const seen = new Set<string>();
  return list.map((t, i) => {
    const at = `tools[${i}]`;
    if (!isObject(t) || t.type !== "function" || !isObject(t.function)) {
      fail(at, `'${at}' must be {"type":"function","function":{"name":…}}`);
    }
    const f = (t as JsonObject).function as JsonObject;
    if (typeof f.name !== "string" || !NAME.test(f.name)) fail(`${at}.function.name`, `'${at}.function.name' must be 1 to 64 letters, digits, '_' or '-'`);
    const name = f.name as string;
    if (seen.has(name)) fail(`${at}.function.name`, `'${at}.function.name' repeats the tool name '${name}'`);
    seen.add(name);
    if (f.description !== undefined && f.description !== null && typeof f.description !== "string") {
      fail(`${at}.function.description`, `'${at}.function.description' must be a string`);
    }
    if (f.parameters !== undefined && f.parameters !== null && !isObject(f.parameters)) {
      fail(`${at}.function.parameters`, `'${at}.function.parameters' must be a JSON schema object`);
    }
    return {
      name,
      description: typeof f.description === "string" ? f.description : undefined,
      parameters: isObject(f.parameters) ? f.parameters : undefined,
    };
  });
}

function readChoice(v: unknown, tools: readonly ToolDef[]): ToolChoice {
  if (v === undefined || v === null || v === "auto") return "auto";
  if (v === "none" || v === "required") return v;
  if (isObject(v) && v.type === "function" && isObject(v.function) && typeof v.function.name === "string") {
    const name = v.function.name;
    if (!tools.some((t) => t.name === name)) fail("tool_choice", `'tool_choice' names '${name}', which is not in 'tools'`);
    return { name };
  }
  return fail("tool_choice", `'tool_choice' must be "auto", "none", "required" or {"type":"function","function":{"name":…}}`);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function fail(param: string, message: string): never {
  throw new ServingError("invalid_field", message, { param });
}

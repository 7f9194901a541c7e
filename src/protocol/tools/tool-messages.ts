import { ServingError } from "../serving-error.js";
import type { JsonObject } from "../validate.js";
import type { ToolRequest } from "./tool-request.js";

/**
 * The plain rendering of tools for chat templates without tool roles (every template the worker
 * renders today): OpenAI's tool messages become ordinary messages before `readChatMessages`, and
 * then go through the model's chat template like any other.
 * - An assistant message with `tool_calls` becomes an assistant message whose text is its
 *   content (if any) and then, on its own line, the calls in the generic format
 *   `{"tool_calls":[{"name":"…","arguments":{…}}]}` (what the model is asked to write).
 * - A `tool` message becomes a user message `Tool result (<name>, <tool_call_id>): <content>`;
 *   consecutive tool messages make one user message, one line each.
 * - The offered tools (unless `tool_choice` is "none") become a system message placed first
 *   (joined to the client's own first system message): `toolsSystemText`.
 */
export function lowerToolMessages(v: unknown, tools: ToolRequest | undefined): unknown {
  if (!Array.isArray(v)) return v;
  const names = new Map<string, string>();
  const out: unknown[] = [];
  for (let i = 0; i < v.length; i++) {
    const m = v[i] as JsonObject;
    if (typeof m !== "object" || m === null || Array.isArray(m)) {
      out.push(m);
      continue;
    }
    const at = `messages[${i}]`;
    if (m.role === "assistant" && m.tool_calls !== undefined && m.tool_calls !== null && !(Array.isArray(m.tool_calls) && m.tool_calls.length === 0)) {
      out.push({ role: "assistant", content: assistantText(m, at, names) });
    } else if (m.role === "tool") {
      const line = toolResultLine(m, at, names);
      const prev = out[out.length - 1] as JsonObject | undefined;
      if (prev !== undefined && prev.role === "user" && typeof prev.toolResults === "string") {
        prev.content = `${prev.content as string}\n${line}`;
      } else out.push({ role: "user", content: line, toolResults: "yes" });
    } else out.push(m.role === "assistant" && (m.content === null || m.content === undefined) ? { ...m, content: "" } : m);
  }
  for (const m of out) if (typeof m === "object" && m !== null) delete (m as JsonObject).toolResults;
  if (tools !== undefined && tools.choice !== "none") {
    const text = toolsSystemText(tools);
    const first = out[0] as JsonObject | undefined;
    if (first !== undefined && (first.role === "system" || first.role === "developer") && typeof first.content === "string") {
      out[0] = { role: "system", content: `${first.content}\n\n${text}` };
    } else out.unshift({ role: "system", content: text });
  }
  return out;
}

/** What the model reads about the tools: the generic format and each tool's name, description and schema. */
export function toolsSystemText(req: ToolRequest): string {
  const lines = [
    "You can call tools. To call tools, answer with only a JSON object of this form and nothing else:",
    '{"tool_calls":[{"name":"<tool name>","arguments":{<arguments>}}]}',
    "Otherwise answer with text that does not start with \"{\". Tools:",
  ];
  for (const t of req.tools) {
    lines.push(`- ${t.name}${t.description ? `: ${t.description}` : ""}. Arguments schema: ${JSON.stringify(t.parameters ?? { type: "object" })}`);
  }
  return lines.join("\n");
}

function assistantText(m: JsonObject, at: string, names: Map<string, string>): string {
  if (!Array.isArray(m.tool_calls)) bad(`${at}.tool_calls`, "must be a list");
  const calls = (m.tool_calls as unknown[]).map((c, j) => {
    const here = `${at}.tool_calls[${j}]`;
    const call = c as JsonObject;
    const f = call?.function as JsonObject | undefined;
    if (typeof call !== "object" || call === null || typeof f !== "object" || f === null || typeof f.name !== "string") {
      bad(here, 'must be {"id":…,"type":"function","function":{"name":…,"arguments":"…"}}');
    }
    let args: unknown = {};
    if (typeof f!.arguments === "string" && f!.arguments.trim() !== "") {
      try {
        args = JSON.parse(f!.arguments);
      } catch {
        bad(`${here}.function.arguments`, "is not valid JSON");
      }
    } else if (f!.arguments !== undefined && f!.arguments !== null && typeof f!.arguments !== "string") {
      bad(`${here}.function.arguments`, "must be a JSON string");
    }
    if (typeof call.id === "string") names.set(call.id, f!.name as string);
    return { name: f!.name, arguments: args };
  });
  const content = typeof m.content === "string" ? m.content : Array.isArray(m.content) ? textOfParts(m.content) : "";
  const json = JSON.stringify({ tool_calls: calls });
  return content === "" ? json : `${content}\n${json}`;
}

function toolResultLine(m: JsonObject, at: string, names: Map<string, string>): string {
  if (typeof m.tool_call_id !== "string") bad(`${at}.tool_call_id`, "must be a string");
  const id = m.tool_call_id as string;
  const content = typeof m.content === "string" ? m.content : Array.isArray(m.content) ? textOfParts(m.content) : bad(`${at}.content`, "must be a string or a list of text parts");
  const name = names.get(id);
  return `Tool result (${name === undefined ? "" : `${name}, `}${id}): ${content}`;
}

function textOfParts(parts: unknown[]): string {
  return parts.map((p) => (typeof p === "object" && p !== null && typeof (p as JsonObject).text === "string" ? (p as JsonObject).text : "")).join("");
}

function bad(param: string, why: string): never {
  throw new ServingError("invalid_field", `'${param}' ${why}`, { param });
}

import { ServingError } from "../serving-error.js";
import type { JsonObject } from "../validate.js";
import type { NativeCallSyntax } from "./native-tool-calls.js";
import type { ToolChoice, ToolDef, ToolRequest } from "./tool-request.js";

/**
 * The tools of a chat request as the worker API carries them (optional `tools` of
 * /worker/prefill; the seed API has none). The coordinator also sends `messages` in the generic
 * plain rendering (tool-messages.ts), which a worker whose template has no tool-call syntax
 * renders as always; a worker whose template has one renders `history` (the client's messages
 * with tool calls and results kept structured) and the tools through the template instead, and
 * says so in its prefill answer (`tool_syntax`), so that the coordinator parses that format.
 */
export interface WorkerTools {
  tools: ToolDef[];
  /** Never "none": such requests carry no tools. */
  choice: Exclude<ToolChoice, "none">;
  parallel: boolean;
  history: ToolChatMessage[];
}

/** One chat message with its tool calls (assistant) or the call it answers (tool). */
export interface ToolChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  /** Assistant: the calls it made, `arguments` the JSON text as the client sent it. */
  tool_calls?: { id: string; name: string; arguments: string }[];
  /** Tool: the id of the call whose result this is. */
  tool_call_id?: string;
}

/** The worker-API tools of an OpenAI chat request (`raw`: its messages as sent, already checked by lowerToolMessages). */
export function workerToolsOf(req: ToolRequest, raw: unknown): WorkerTools | undefined {
  if (req.choice === "none" || !Array.isArray(raw)) return undefined;
  return { tools: req.tools, choice: req.choice, parallel: req.parallel, history: raw.map(historyMessage) };
}

function historyMessage(v: unknown): ToolChatMessage {
  const m = v as JsonObject;
  const role = m.role === "developer" ? "system" : (m.role as ToolChatMessage["role"]);
  const out: ToolChatMessage = { role, content: textOf(m.content) };
  if (role === "assistant" && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) {
    out.tool_calls = (m.tool_calls as JsonObject[]).map((c, j) => {
      const f = c.function as JsonObject;
      const args = typeof f.arguments === "string" && f.arguments.trim() !== "" ? f.arguments : "{}";
      return { id: typeof c.id === "string" ? c.id : `call_${j}`, name: f.name as string, arguments: args };
    });
  }
  if (role === "tool" && typeof m.tool_call_id === "string") out.tool_call_id = m.tool_call_id;
  return out;
}

function textOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) return v.map((p) => (typeof p === "object" && p !== null && typeof (p as JsonObject).text === "string" ? (p as JsonObject).text : "")).join("");
  return "";
}

/** The worker's reader of `tools` (shape only: the coordinator validated the client's request). */
export function readWorkerTools(v: unknown): WorkerTools | undefined {
  if (v === undefined || v === null) return undefined;
  const o = v as JsonObject;
  const ok = typeof v === "object" && !Array.isArray(v) && Array.isArray(o.tools) && o.tools.length > 0 && Array.isArray(o.history)
    && typeof o.parallel === "boolean" && (o.choice === "auto" || o.choice === "required" || (typeof o.choice === "object" && o.choice !== null && typeof (o.choice as JsonObject).name === "string"))
    && (o.tools as JsonObject[]).every((t) => typeof t === "object" && t !== null && typeof t.name === "string")
    && (o.history as JsonObject[]).every((m) => typeof m === "object" && m !== null && ["system", "user", "assistant", "tool"].includes(m.role as string) && typeof m.content === "string");
  if (!ok) throw new ServingError("invalid_field", "'tools' must be {tools, choice, parallel, history}", { param: "tools" });
  return v as unknown as WorkerTools;
}

/** The prefill answer's word on the format: the model's own syntax, or absent for the generic one. */
export type ToolFormat = { tool_syntax?: NativeCallSyntax };

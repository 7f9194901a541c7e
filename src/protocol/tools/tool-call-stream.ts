import type { FinishReason, OpenAiChunks, OpenAiUsage } from "../openai-stream.js";
import { parseToolCalls, toolCallDeltas } from "./tool-call-output.js";
import type { ToolRequest } from "./tool-request.js";

/**
 * A streamed chat answer when tools are offered, as a small state machine over the text:
 * `undecided` until the first non-blank character (under `auto`), then `text` (streamed as it
 * comes, as without tools) or `calls` (held until the end: the calls are parsed from the whole
 * JSON object, then sent as OpenAI streams them: per call a delta with index, id, type and name,
 * then the arguments in fragments, and `finish_reason: "tool_calls"`). Under `required` or a
 * named choice the answer is `calls` from the start. Calls cut short by max_tokens are sent as text.
 */
export class ToolCallStream {
  private state: "undecided" | "text" | "calls";
  private held = "";
  private readonly names: ReadonlySet<string>;

  constructor(private readonly chunks: OpenAiChunks, tools: ToolRequest, private readonly newId: () => string) {
    this.state = tools.choice === "auto" ? "undecided" : "calls";
    this.names = new Set(tools.tools.map((t) => t.name));
  }

  tokens(texts: readonly string[]): string {
    const text = texts.join("");
    if (this.state === "text") return this.chunks.text([text]);
    this.held += text;
    if (this.state === "calls") return "";
    const first = this.held.trimStart()[0];
    if (first === undefined) return "";
    if (first === "{") {
      this.state = "calls";
      return "";
    }
    this.state = "text";
    const out = this.chunks.text([this.held]);
    this.held = "";
    return out;
  }

  end(finish: FinishReason, usage: OpenAiUsage): string {
    if (this.held === "") return this.chunks.end(finish, usage);
    const calls = this.state === "calls" ? parseToolCalls(this.held, this.names, this.newId) : undefined;
    if (calls === undefined) return this.chunks.text([this.held]) + this.chunks.end(finish, usage);
    return this.chunks.toolCalls(toolCallDeltas(calls)) + this.chunks.end("tool_calls", usage);
  }
}

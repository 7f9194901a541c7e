import type { FinishReason, OpenAiChunks, OpenAiUsage } from "../openai-stream.js";
import type { LogprobContent } from "../token-logprobs.js";
import { GENERIC_CALLS, type CallFormat } from "./call-format.js";
import type { ToolRequest } from "./tool-request.js";

/**
 * A streamed chat answer when tools are offered, as a small state machine over the text:
 * `undecided` until the first non-blank character (under `auto`), then `text` (streamed as it
 * comes, as without tools) or `calls` (under `required` or a named choice, from the start).
 * Calls stream as OpenAI streams them, while they are generated: once a call's name has closed, a
 * `delta.tool_calls` entry with its index, id, type and name (and `arguments: ""`); then, with each
 * batch of tokens, the new text of its arguments. The grammar fixes the order (name, then
 * arguments), so what was sent is always a prefix of the final text. The last chunk says
 * `tool_calls`, or the worker's reason (`length`) when the calls were cut short; an answer that
 * started like calls but never named one is sent as text.
 */
export class ToolCallStream {
  private state: "undecided" | "text" | "calls";
  private held = "";
  /** Per call index: the characters of its arguments already sent. */
  private readonly sent: number[] = [];
  private readonly names: ReadonlySet<string>;

  /** `index`: the choice this stream writes (OpenAI's `n`); `format`: how calls are written (call-format.ts). */
  constructor(
    private readonly chunks: OpenAiChunks, tools: ToolRequest, private readonly newId: () => string, private readonly index = 0,
    private readonly format: CallFormat = GENERIC_CALLS,
  ) {
    this.state = tools.choice === "auto" ? "undecided" : "calls";
    this.names = new Set(tools.tools.map((t) => t.name));
  }

  /** Logprobs go out with text answers; calls' chunks carry none (as OpenAI's). */
  tokens(texts: readonly string[], logprobs: readonly LogprobContent[] = []): string {
    const text = texts.join("");
    if (this.state === "text") return this.chunks.text([text], logprobs, this.index);
    this.held += text;
    if (this.state === "undecided") {
      const first = this.held.trimStart()[0];
      if (first === undefined) return "";
      if (first !== this.format.start) {
        this.state = "text";
        const out = this.chunks.text([this.held], logprobs, this.index);
        this.held = "";
        return out;
      }
      this.state = "calls";
    }
    return this.chunks.toolCalls(this.newDeltas(), this.index);
  }

  /** The finish reason's chunk, the usage chunk when asked for, and `[DONE]`. */
  end(finish: FinishReason, usage: OpenAiUsage): string {
    return this.finish(finish) + this.chunks.done(usage);
  }

  /** This choice's last chunks: held text that never became a call, and the finish reason. */
  finish(finish: FinishReason): string {
    if (this.sent.length > 0) {
      const whole = this.format.parse(this.held, this.names, () => "") !== undefined;
      return this.chunks.finish(whole ? "tool_calls" : finish, this.index);
    }
    if (this.held === "") return this.chunks.finish(finish, this.index);
    return this.chunks.text([this.held], [], this.index) + this.chunks.finish(finish, this.index);
  }

  /** The deltas for what the held text adds to what was sent. */
  private newDeltas(): object[] {
    const deltas: object[] = [];
    this.format.scan(this.held).forEach((call, index) => {
      if (call.name === undefined || !this.names.has(call.name)) return;
      if (this.sent[index] === undefined) {
        this.sent[index] = 0;
        deltas.push({ index, id: `call_${this.newId()}`, type: "function", function: { name: call.name, arguments: "" } });
      }
      if (call.args.length > this.sent[index]!) {
        deltas.push({ index, function: { arguments: call.args.slice(this.sent[index]) } });
        this.sent[index] = call.args.length;
      }
    });
    return deltas;
  }
}

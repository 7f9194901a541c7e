import {
  GeneralChatWrapper, LlamaText, SpecialToken, SpecialTokensText, resolveChatWrapper,
  type ChatHistoryItem, type ChatWrapper, type GgufFileInfo, type Tokenizer,
} from "node-llama-cpp";
import { ServingError } from "../protocol/serving-error.js";
import type { ChatMessage } from "../protocol/chat.js";
import type { ToolChatMessage } from "../protocol/tools/worker-tools.js";
import type { RenderedChat } from "./engine.js";
import { toolCallSyntaxOf, type ToolCallSyntax } from "./tool-call-syntax.js";

/** A tool as the template describes it to the model. */
export interface TemplateTool {
  name: string;
  description?: string;
  /** JSON schema of the arguments object. */
  parameters?: object;
}

/**
 * Chat messages → prompt tokens with the model's own chat template. node-llama-cpp resolves the
 * template: the GGUF's `tokenizer.chat_template` when it has one (as an equivalent built-in wrapper
 * where one matches, else rendered as Jinja), else the best built-in wrapper for the model (by
 * architecture, file name and tokens), else its general wrapper. The template's stop triggers
 * become stop texts and stop tokens that the worker's decode path applies, so every engine that
 * can give a node-llama-cpp tokenizer and the GGUF's metadata gets the same chat behaviour.
 */
export interface ChatTemplateSource {
  fileInfo: GgufFileInfo;
  tokenizer: Tokenizer;
  bosString: string | null;
  filename?: string;
  /**
   * Refuses text the tokenizer cannot take (vocabulary-coverage.ts), called on each message and on
   * the rendered text before it is tokenized: a native tokenizer would throw on it, uncaught.
   */
  checkText?: (text: string, where: string) => void;
}

export class ChatTemplate {
  private readonly wrapper: ChatWrapper;
  private readonly tokenizer: Tokenizer;
  private stopsCache: { stops: string[]; stopTokens: number[] } | undefined;
  private readonly checkText: ((text: string, where: string) => void) | undefined;

  constructor(source: ChatTemplateSource) {
    this.tokenizer = source.tokenizer;
    this.checkText = source.checkText;
    this.wrapper =
      resolveChatWrapper({
        bosString: source.bosString, fileInfo: source.fileInfo, tokenizer: source.tokenizer, filename: source.filename, warningLogs: false,
      }) ?? new GeneralChatWrapper();
  }

  /** The wrapper's name, e.g. `Llama2Chat`, `General`, `JinjaTemplate`. */
  get name(): string {
    return this.wrapper.wrapperName;
  }

  /** The model's own tool-call syntax, where its template defines one (tool-call-syntax.ts). */
  get toolCallSyntax(): ToolCallSyntax | undefined {
    return toolCallSyntaxOf(this.wrapper);
  }

  /**
   * With `tools`, the template describes them its own way (Jinja templates get `tools` in their
   * context) when it has a tool-call syntax; without one, tools are left to the plain rendering.
   */
  render(messages: readonly ChatMessage[], tools?: readonly TemplateTool[]): RenderedChat {
    messages.forEach((m, i) => this.checkText?.(m.content, `messages[${i}].content`));
    const history: ChatHistoryItem[] = messages.map((m) =>
      m.role === "system" ? { type: "system", text: m.content }
        : m.role === "user" ? { type: "user", text: m.content }
          : { type: "model", response: [m.content] },
    );
    // The model answers after the last message; a trailing assistant message is continued.
    if (messages[messages.length - 1]?.role !== "assistant") history.push({ type: "model", response: [] });
    const availableFunctions = tools !== undefined && tools.length > 0 && this.toolCallSyntax !== undefined ? functionsOf(tools) : undefined;
    return this.renderHistory(history, availableFunctions);
  }

  /**
   * A chat with tools through the template's own tool rendering: the tools described its way, an
   * assistant's calls written in its syntax and each call's result as its tool message. Undefined
   * when the template defines no tool-call syntax (the caller then keeps the generic format).
   */
  renderWithTools(messages: readonly ToolChatMessage[], tools: readonly TemplateTool[]): RenderedChat | undefined {
    if (this.toolCallSyntax === undefined) return undefined;
    messages.forEach((m, i) => this.checkText?.(m.content, `messages[${i}].content`));
    return this.renderHistory(toolHistory(messages), functionsOf(tools));
  }

  /** renderWithTools with the syntax the answer will be parsed by; undefined without a tool-call syntax. */
  renderToolChat(messages: readonly ToolChatMessage[], tools: readonly TemplateTool[]): { rendered: RenderedChat; syntax: ToolCallSyntax } | undefined {
    const syntax = this.toolCallSyntax;
    const rendered = syntax === undefined ? undefined : this.renderWithTools(messages, tools);
    return rendered === undefined || syntax === undefined ? undefined : { rendered, syntax };
  }

  private renderHistory(history: ChatHistoryItem[], availableFunctions: ReturnType<typeof functionsOf> | undefined): RenderedChat {
    let state: ReturnType<ChatWrapper["generateContextState"]>;
    try {
      state = this.wrapper.generateContextState({ chatHistory: history, ...(availableFunctions !== undefined ? { availableFunctions } : {}) });
    } catch (err) {
      throw new ServingError("invalid_field", `the model's chat template cannot render these messages: ${(err as Error).message}`, { param: "messages" });
    }
    // The template's own text too (its special tokens are tokens, not text).
    if (this.checkText !== undefined) {
      const plain = state.contextText.values.filter((v): v is string => typeof v === "string").join("");
      this.checkText(plain, "the chat template's output");
    }
    const tokens = state.contextText.tokenize(this.tokenizer) as number[];
    this.stopsCache ??= this.stopsOf(state.stopGenerationTriggers);
    return { tokens, ...this.stopsCache, template: this.name };
  }

  /** Triggers that are one special token end by id; textual ones end by text. */
  private stopsOf(triggers: readonly LlamaText[]): { stops: string[]; stopTokens: number[] } {
    const stops = new Set<string>();
    const stopTokens = new Set<number>();
    for (const trigger of triggers) {
      const ids = trigger.tokenize(this.tokenizer) as number[];
      if (ids.length === 1 && this.tokenizer.isSpecialToken(ids[0] as never)) {
        stopTokens.add(ids[0]!);
        continue;
      }
      let text = "";
      let textual = true;
      for (const v of trigger.values) {
        if (typeof v === "string") text += v;
        else if (v instanceof SpecialTokensText) text += v.value;
        else if (v instanceof SpecialToken && v.value === "NL") text += "\n";
        else textual = false;
      }
      if (textual && text !== "") stops.add(text);
    }
    return { stops: [...stops], stopTokens: [...stopTokens] };
  }
}

/** Tools in node-llama-cpp's terms (`params`: the arguments' JSON schema). */
function functionsOf(tools: readonly TemplateTool[]): Record<string, { description?: string; params?: never }> {
  const out: Record<string, { description?: string; params?: never }> = {};
  for (const t of tools) {
    Object.defineProperty(out, t.name, {
      value: { ...(t.description !== undefined ? { description: t.description } : {}), ...(t.parameters !== undefined ? { params: t.parameters as never } : {}) },
      enumerable: true,
    });
  }
  return out;
}

/**
 * OpenAI-style messages → node-llama-cpp's history: an assistant's calls become function calls
 * of its response, each with the result of the tool message that answers its id ("" while none
 * does); tool messages are consumed there. The model answers after a last user or system
 * message, and otherwise continues its last response (after its calls' results, or its text).
 */
function toolHistory(messages: readonly ToolChatMessage[]): ChatHistoryItem[] {
  const results = new Map<string, string>();
  for (const m of messages) if (m.role === "tool" && m.tool_call_id !== undefined) results.set(m.tool_call_id, m.content);
  const history: ChatHistoryItem[] = [];
  for (const m of messages) {
    if (m.role === "system") history.push({ type: "system", text: m.content });
    else if (m.role === "user") history.push({ type: "user", text: m.content });
    else if (m.role === "assistant") {
      const response: Extract<ChatHistoryItem, { type: "model" }>["response"] = m.content === "" ? [] : [m.content];
      for (const c of m.tool_calls ?? []) {
        let params: unknown;
        try {
          params = JSON.parse(c.arguments);
        } catch {
          throw new ServingError("invalid_field", `the arguments of tool call '${c.id}' are not valid JSON`, { param: "messages" });
        }
        response.push({ type: "functionCall", name: c.name, params, result: results.get(c.id) ?? "" });
      }
      history.push({ type: "model", response });
    }
  }
  // After tool results the model continues the response that made the calls (node-llama-cpp
  // writes the generation prompt after them; a new empty response would add a "\n\n" separator).
  const last = messages[messages.length - 1];
  if (last?.role === "system" || last?.role === "user") history.push({ type: "model", response: [] });
  return history;
}

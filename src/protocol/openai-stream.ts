import { sseData } from "./sse.js";
import type { OpenAiKind } from "./openai-api.js";
import type { ToolCall } from "./tools/tool-call-output.js";

/**
 * OpenAI's response shapes, exact bytes: streamed chunks (`data: {chunk}` … `data: [DONE]`) and the
 * non-streamed bodies of `/v1/completions` (`text_completion`) and `/v1/chat/completions`
 * (`chat.completion`). The constant part of a token chunk is built once per response, so a token
 * costs one JSON string escape and a concatenation.
 */
export type FinishReason = "stop" | "length" | "tool_calls";

export interface OpenAiUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export interface OpenAiResponseMeta {
  kind: OpenAiKind;
  /** `cmpl-…` or `chatcmpl-…`. */
  id: string;
  /** Unix seconds. */
  created: number;
  model: string;
  /** Streams only: every chunk carries `usage: null` and a last chunk carries the usage. */
  includeUsage: boolean;
}

export const SSE_DONE = "data: [DONE]\n\n";

/** The worker's stop reasons as OpenAI's: only `length` differs from a normal end. */
export function finishReasonOf(workerReason: string): FinishReason {
  return workerReason === "length" ? "length" : "stop";
}

export function usageOf(promptTokens: number, completionTokens: number, cachedTokens: number): OpenAiUsage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

function head(m: OpenAiResponseMeta, object: string): string {
  return `{"id":${JSON.stringify(m.id)},"object":"${object}","created":${m.created},"model":${JSON.stringify(m.model)},`;
}

/** Builds the chunks of one streamed response. */
export class OpenAiChunks {
  private readonly tokenPrefix: string;
  private readonly tokenSuffix: string;
  private readonly base: string;
  private readonly usageNull: string;

  constructor(readonly meta: OpenAiResponseMeta) {
    const chat = meta.kind === "chat";
    this.base = head(meta, chat ? "chat.completion.chunk" : "text_completion");
    this.usageNull = meta.includeUsage ? `,"usage":null` : "";
    this.tokenPrefix = `data: ${this.base}"choices":[{"index":0,${chat ? `"delta":{"content":` : `"text":`}`;
    this.tokenSuffix = `${chat ? "}" : ""},"logprobs":null,"finish_reason":null}]${this.usageNull}}\n\n`;
  }

  /** Chat streams open with the assistant's role, as OpenAI's do. */
  role(): string {
    if (this.meta.kind !== "chat") return "";
    return sseData(`${this.base}"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${this.usageNull}}`);
  }

  /** One chunk for whatever text arrived together; nothing for empty text. */
  text(texts: readonly string[]): string {
    const text = texts.length === 1 ? texts[0]! : texts.join("");
    if (text === "") return "";
    return this.tokenPrefix + JSON.stringify(text) + this.tokenSuffix;
  }

  /** One chunk per `delta.tool_calls` entry (tools/tool-call-stream.ts builds them). */
  toolCalls(deltas: readonly object[]): string {
    let out = "";
    for (const d of deltas) {
      out += sseData(`${this.base}"choices":[{"index":0,"delta":{"tool_calls":[${JSON.stringify(d)}]},"logprobs":null,"finish_reason":null}]${this.usageNull}}`);
    }
    return out;
  }

  /** The chunk with the finish reason, the usage chunk when asked for, and `[DONE]`. */
  end(finish: FinishReason, usage: OpenAiUsage): string {
    const chat = this.meta.kind === "chat";
    const choice = chat
      ? `{"index":0,"delta":{},"logprobs":null,"finish_reason":"${finish}"}`
      : `{"index":0,"text":"","logprobs":null,"finish_reason":"${finish}"}`;
    let out = sseData(`${this.base}"choices":[${choice}]${this.usageNull}}`);
    if (this.meta.includeUsage) out += sseData(`${this.base}"choices":[],"usage":${JSON.stringify(usage)}}`);
    return out + SSE_DONE;
  }
}

/** An error after the stream started: OpenAI's SDKs raise it from the `error` field. */
export function openAiStreamError(code: string, message: string): string {
  return sseData(JSON.stringify({ error: { message, type: "server_error", param: null, code } }));
}

/** The non-streamed response body. */
export function openAiResponseBody(
  m: OpenAiResponseMeta, text: string, finish: FinishReason, usage: OpenAiUsage, toolCalls?: readonly ToolCall[],
): Record<string, unknown> {
  const base = { id: m.id, created: m.created, model: m.model };
  if (m.kind === "chat") {
    const message = toolCalls !== undefined
      ? { role: "assistant", content: null, tool_calls: toolCalls, refusal: null }
      : { role: "assistant", content: text, refusal: null };
    return {
      ...base, object: "chat.completion",
      choices: [{ index: 0, message, logprobs: null, finish_reason: toolCalls !== undefined ? "tool_calls" : finish }],
      usage,
    };
  }
  return { ...base, object: "text_completion", choices: [{ index: 0, text, logprobs: null, finish_reason: finish }], usage };
}

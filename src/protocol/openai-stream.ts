import { sseData } from "./sse.js";
import type { OpenAiKind } from "./openai-api.js";
import { completionLogprobsOf, type LogprobContent } from "./token-logprobs.js";
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

/**
 * Builds the chunks of one streamed response. With `n` choices every chunk names its choice's
 * `index`; `end` closes one choice (its finish chunk) and `done` the response (usage, `[DONE]`).
 */
export class OpenAiChunks {
  private readonly prefixes: string[] = [];
  private readonly tokenSuffix: string;
  private readonly base: string;
  private readonly usageNull: string;
  /** Completions: the text offset of each choice's next token (UTF-16 units), for `text_offset`. */
  private readonly offsets: number[] = [];

  constructor(readonly meta: OpenAiResponseMeta) {
    const chat = meta.kind === "chat";
    this.base = head(meta, chat ? "chat.completion.chunk" : "text_completion");
    this.usageNull = meta.includeUsage ? `,"usage":null` : "";
    this.tokenSuffix = `${chat ? "}" : ""},"logprobs":null,"finish_reason":null}]${this.usageNull}}\n\n`;
  }

  private prefix(index: number): string {
    return (this.prefixes[index] ??= `data: ${this.base}"choices":[{"index":${index},${this.meta.kind === "chat" ? `"delta":{"content":` : `"text":`}`);
  }

  /** Chat streams open with the assistant's role, as OpenAI's do. */
  role(index = 0): string {
    if (this.meta.kind !== "chat") return "";
    return sseData(`${this.base}"choices":[{"index":${index},"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]${this.usageNull}}`);
  }

  /** One chunk for whatever text arrived together; nothing for empty text without logprobs. */
  text(texts: readonly string[], logprobs: readonly LogprobContent[] = [], index = 0): string {
    const text = texts.length === 1 ? texts[0]! : texts.join("");
    if (logprobs.length > 0) return this.textWithLogprobs(text, logprobs, index);
    if (text === "") return "";
    return this.prefix(index) + JSON.stringify(text) + this.tokenSuffix;
  }

  /** One chunk per `delta.tool_calls` entry (tools/tool-call-stream.ts builds them). */
  toolCalls(deltas: readonly object[], index = 0): string {
    let out = "";
    for (const d of deltas) {
      out += sseData(`${this.base}"choices":[{"index":${index},"delta":{"tool_calls":[${JSON.stringify(d)}]},"logprobs":null,"finish_reason":null}]${this.usageNull}}`);
    }
    return out;
  }

  private textWithLogprobs(text: string, logprobs: readonly LogprobContent[], index: number): string {
    const chat = this.meta.kind === "chat";
    let lp: string;
    if (chat) {
      lp = `{"content":${JSON.stringify(logprobs)},"refusal":null}`;
    } else {
      const offset = this.offsets[index] ?? 0;
      const c = completionLogprobsOf(logprobs, offset);
      this.offsets[index] = offset + c.tokens.reduce((n, t) => n + t.length, 0);
      lp = JSON.stringify(c);
    }
    return this.prefix(index) + JSON.stringify(text) + `${chat ? "}" : ""},"logprobs":${lp},"finish_reason":null}]${this.usageNull}}\n\n`;
  }

  /** The chunk with one choice's finish reason. */
  finish(finish: FinishReason, index = 0): string {
    const choice = this.meta.kind === "chat"
      ? `{"index":${index},"delta":{},"logprobs":null,"finish_reason":"${finish}"}`
      : `{"index":${index},"text":"","logprobs":null,"finish_reason":"${finish}"}`;
    return sseData(`${this.base}"choices":[${choice}]${this.usageNull}}`);
  }

  /** The usage chunk when asked for, and `[DONE]`. */
  done(usage: OpenAiUsage): string {
    const out = this.meta.includeUsage ? sseData(`${this.base}"choices":[],"usage":${JSON.stringify(usage)}}`) : "";
    return out + SSE_DONE;
  }

  /** The chunk with the finish reason, the usage chunk when asked for, and `[DONE]` (one choice). */
  end(finish: FinishReason, usage: OpenAiUsage): string {
    return this.finish(finish) + this.done(usage);
  }
}

/** An error after the stream started: OpenAI's SDKs raise it from the `error` field. */
export function openAiStreamError(code: string, message: string): string {
  return sseData(JSON.stringify({ error: { message, type: "server_error", param: null, code } }));
}

/** One choice of a non-streamed response; `logprobs` undefined when the request asked for none. */
export interface OpenAiChoice {
  text: string;
  finish: FinishReason;
  logprobs: readonly LogprobContent[] | undefined;
  /** Set when the answer was tool calls (chat): the message carries them and says `tool_calls`. */
  toolCalls?: readonly ToolCall[];
}

/** The non-streamed response body. */
export function openAiResponseBody(
  m: OpenAiResponseMeta, text: string, finish: FinishReason, usage: OpenAiUsage, logprobs?: readonly LogprobContent[], toolCalls?: readonly ToolCall[],
): Record<string, unknown> {
  return openAiChoicesBody(m, [{ text, finish, logprobs, ...(toolCalls !== undefined ? { toolCalls } : {}) }], usage);
}

/** The non-streamed response body of n choices, `index` their position. */
export function openAiChoicesBody(m: OpenAiResponseMeta, choices: readonly OpenAiChoice[], usage: OpenAiUsage): Record<string, unknown> {
  const base = { id: m.id, created: m.created, model: m.model };
  if (m.kind === "chat") {
    return {
      ...base, object: "chat.completion",
      choices: choices.map((c, index) => ({
        index,
        message: c.toolCalls !== undefined
          ? { role: "assistant", content: null, tool_calls: c.toolCalls, refusal: null }
          : { role: "assistant", content: c.text, refusal: null },
        logprobs: c.logprobs === undefined ? null : { content: c.logprobs, refusal: null },
        finish_reason: c.toolCalls !== undefined ? "tool_calls" : c.finish,
      })),
      usage,
    };
  }
  return {
    ...base, object: "text_completion",
    choices: choices.map((c, index) => ({
      index, text: c.text, logprobs: c.logprobs === undefined ? null : completionLogprobsOf(c.logprobs, 0), finish_reason: c.finish,
    })),
    usage,
  };
}

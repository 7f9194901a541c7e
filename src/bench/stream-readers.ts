/**
 * Pure readers of the three streaming wire formats the bench tool drives; each takes the `data`
 * of one SSE event and the time it arrived (ms), and says at the end how the stream went:
 *   - seed (`/coordinator/infer`): `{token, finished:false}` … `{finished:true, reason, prompt_tokens,
 *     completion_tokens, error?}`;
 *   - worker (`/worker/decode`): `{token, seq}` … the same final event; `/worker/generate` sends
 *     `{prefill: {prompt_tokens, cached_tokens, …}}` first;
 *   - OpenAI (`/v1/completions`, `/v1/chat/completions`, `stream: true`): chunks whose
 *     `choices[0].text` or `choices[0].delta.content` carry text, a last chunk with `usage`
 *     (`prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`), then `[DONE]`;
 *     an error inside the stream is a chunk `{error: {message, type, code}}`.
 */
export interface StreamOutcome {
  /** True when the stream ended as the protocol says a complete answer ends. */
  complete: boolean;
  /** "ok" or the error code the stream carried. */
  reason: string;
  firstTokenMs: number | undefined;
  itlMs: number[];
  tokenEvents: number;
  text: string;
  promptTokens: number | undefined;
  completionTokens: number | undefined;
  cachedTokens: number | undefined;
}

export interface StreamReader {
  onEvent(data: string, nowMs: number): void;
  /** `truncated`: the connection ended; a reader that saw no proper end reports a failure. */
  outcome(): StreamOutcome;
}

abstract class TokenTimeline implements StreamReader {
  protected o: StreamOutcome = {
    complete: false, reason: "stream_truncated", firstTokenMs: undefined, itlMs: [], tokenEvents: 0, text: "",
    promptTokens: undefined, completionTokens: undefined, cachedTokens: undefined,
  };
  private lastMs = 0;

  protected token(text: string, nowMs: number): void {
    if (this.o.firstTokenMs === undefined) this.o.firstTokenMs = nowMs;
    else this.o.itlMs.push(nowMs - this.lastMs);
    this.lastMs = nowMs;
    this.o.tokenEvents++;
    this.o.text += text;
  }

  protected end(reason: string, complete: boolean): void {
    this.o.complete = complete;
    this.o.reason = reason;
  }

  abstract onEvent(data: string, nowMs: number): void;

  outcome(): StreamOutcome {
    return this.o;
  }
}

type Json = Record<string, unknown>;

function parse(data: string): Json | undefined {
  try {
    const v = JSON.parse(data) as unknown;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : undefined;
  } catch {
    return undefined;
  }
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** The seed's client stream and the worker's decode stream share their final event. */
export class SeedStreamReader extends TokenTimeline {
  onEvent(data: string, nowMs: number): void {
    const m = parse(data);
    if (m === undefined) return this.end("bad_event", false);
    if (m.finished === true) {
      this.o.promptTokens = num(m.prompt_tokens) ?? this.o.promptTokens;
      this.o.completionTokens = num(m.completion_tokens);
      this.o.cachedTokens = num(m.cached_tokens) ?? this.o.cachedTokens;
      const err = m.error as Json | undefined;
      if (m.reason === "error" || err !== undefined) return this.end(typeof err?.code === "string" ? err.code : "stream_error", false);
      return this.end("ok", true);
    }
    if (typeof m.token === "string") return this.token(m.token, nowMs);
    const ack = m.prefill as Json | undefined;
    if (ack !== null && typeof ack === "object") this.setPrefill(num(ack.prompt_tokens), num(ack.cached_tokens));
  }

  /** The worker target learns prompt and cached tokens from its prefill answer. */
  setPrefill(promptTokens: number | undefined, cachedTokens: number | undefined): void {
    this.o.promptTokens = promptTokens;
    this.o.cachedTokens = cachedTokens;
  }
}

export class OpenAiStreamReader extends TokenTimeline {
  private finishReason: string | undefined;

  onEvent(data: string, nowMs: number): void {
    if (data === "[DONE]") {
      if (this.o.reason === "stream_truncated" || this.o.reason === "ok") this.end("ok", this.finishReason !== undefined || this.o.tokenEvents > 0);
      return;
    }
    const m = parse(data);
    if (m === undefined) return this.end("bad_event", false);
    if (m.error !== undefined) {
      const e = m.error as Json;
      return this.end(typeof e.code === "string" ? e.code : typeof e.type === "string" ? e.type : "stream_error", false);
    }
    const usage = m.usage as Json | undefined | null;
    if (usage) {
      this.o.promptTokens = num(usage.prompt_tokens);
      this.o.completionTokens = num(usage.completion_tokens);
      const details = usage.prompt_tokens_details as Json | undefined | null;
      if (details) this.o.cachedTokens = num(details.cached_tokens);
    }
    const choice = Array.isArray(m.choices) ? (m.choices[0] as Json | undefined) : undefined;
    if (choice === undefined) return;
    const delta = choice.delta as Json | undefined;
    const text = typeof choice.text === "string" ? choice.text : typeof delta?.content === "string" ? delta.content : "";
    // A role-only first delta or an empty chunk is no token.
    if (text !== "") this.token(text, nowMs);
    if (typeof choice.finish_reason === "string") this.finishReason = choice.finish_reason;
  }
}

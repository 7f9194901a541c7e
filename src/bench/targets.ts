import { randomUUID } from "node:crypto";
import { Agent } from "undici";
import { errorReason, postJson, readSseEvents, type HttpResponse } from "./load-client.js";
import { outcomeOfStatus, type RequestResult } from "./request-result.js";
import { OpenAiStreamReader, SeedStreamReader, type StreamOutcome, type StreamReader } from "./stream-readers.js";

/**
 * The servers the bench tool drives, all streaming:
 *   - `seed`: a coordinator's `POST /coordinator/infer`;
 *   - `worker`: workers directly, `POST /worker/prefill` then `POST /worker/decode` (TTFT counts both),
 *     round-robin over the URLs given (the seed's two calls);
 *   - `worker-generate`: workers directly in one exchange, `POST /worker/generate` (its first event
 *     acknowledges the prefill), as the coordinator calls them;
 *   - `openai-completions` / `openai-chat`: `POST /v1/completions` / `/v1/chat/completions` with
 *     `stream: true` and `stream_options.include_usage`.
 * Requests are greedy (temperature 0). Session ids travel as `x-session-id` (and OpenAI's `user`).
 */
export const TARGETS = ["seed", "worker", "worker-generate", "openai-completions", "openai-chat"] as const;
export type TargetKind = (typeof TARGETS)[number];

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface RequestSpec {
  index: number;
  prompt: string;
  /** The same conversation as chat messages (for `openai-chat`). */
  messages: ChatMessage[];
  maxTokens: number;
  sessionId?: string;
}

export interface TargetOptions {
  kind: TargetKind;
  urls: string[];
  model: string;
  /** Longest a request may take (ms); past it, it is aborted and counted as failed. */
  timeoutMs: number;
}

export class Target {
  private readonly agent = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 30_000 });
  private next = 0;

  constructor(readonly o: TargetOptions) {
    if (o.urls.length === 0) throw new Error("a target needs at least one URL");
  }

  async send(spec: RequestSpec, startMs: number, signal: AbortSignal): Promise<RequestResult> {
    const t0 = performance.now();
    const url = this.o.urls[this.next++ % this.o.urls.length]!;
    const headers: Record<string, string> = {};
    if (spec.sessionId !== undefined) headers["x-session-id"] = spec.sessionId;
    const fail = (status: number, reason: string, outcome = outcomeOfStatus(status)): RequestResult => ({
      index: spec.index, startMs, outcome: status === 0 ? "failed" : outcome, status, reason, ttftMs: undefined,
      e2eMs: performance.now() - t0, itlMs: [], promptTokens: undefined, completionTokens: 0, cachedTokens: undefined, text: "",
      ...(spec.sessionId !== undefined ? { sessionId: spec.sessionId } : {}),
    });
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    try {
      let reader: StreamReader;
      let res: HttpResponse;
      switch (this.o.kind) {
        case "seed":
          reader = new SeedStreamReader();
          res = await this.post(`${url}/coordinator/infer`, { prompt: spec.prompt, model: this.o.model, max_tokens: spec.maxTokens, temperature: 0 }, headers, both);
          break;
        case "worker": {
          const seed = new SeedStreamReader();
          reader = seed;
          const sessionId = randomUUID();
          const pre = await this.post(`${url}/worker/prefill`, { session_id: sessionId, prompt: spec.prompt, max_tokens: spec.maxTokens, sampling: { temperature: 0 } }, headers, both);
          const text = await pre.body.text();
          if (pre.statusCode !== 200) return fail(pre.statusCode, errorReason(text, pre.statusCode));
          const body = JSON.parse(text) as { prompt_tokens?: number; cached_tokens?: number };
          seed.setPrefill(body.prompt_tokens, body.cached_tokens);
          res = await this.post(`${url}/worker/decode`, { session_id: sessionId }, headers, both);
          break;
        }
        case "worker-generate":
          reader = new SeedStreamReader();
          res = await this.post(`${url}/worker/generate`, { session_id: randomUUID(), prompt: spec.prompt, max_tokens: spec.maxTokens, sampling: { temperature: 0 } }, headers, both);
          break;
        case "openai-completions":
        case "openai-chat": {
          reader = new OpenAiStreamReader();
          const chat = this.o.kind === "openai-chat";
          const body = {
            model: this.o.model,
            ...(chat ? { messages: spec.messages } : { prompt: spec.prompt }),
            max_tokens: spec.maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true },
            ...(spec.sessionId !== undefined ? { user: spec.sessionId } : {}),
          };
          res = await this.post(`${url}${chat ? "/v1/chat/completions" : "/v1/completions"}`, body, headers, both);
          break;
        }
      }
      if (res.statusCode !== 200) return fail(res.statusCode, errorReason(await res.body.text(), res.statusCode));
      const out = await readSse(res.body, reader, t0);
      return toResult(spec, startMs, res.statusCode, out, performance.now() - t0);
    } catch (err) {
      if (timeout.aborted) return fail(0, "timeout");
      if (signal.aborted) return fail(0, "aborted");
      const code = (err as { code?: string }).code;
      return fail(0, typeof code === "string" ? code.toLowerCase() : "connection_error");
    }
  }

  private post(url: string, body: unknown, headers: Record<string, string>, signal: AbortSignal): Promise<HttpResponse> {
    return postJson(url, body, { headers, signal, dispatcher: this.agent });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

async function readSse(body: AsyncIterable<Uint8Array>, reader: StreamReader, t0: number): Promise<StreamOutcome> {
  await readSseEvents(body, (data, now) => reader.onEvent(data, now - t0));
  return reader.outcome();
}

function toResult(spec: RequestSpec, startMs: number, status: number, s: StreamOutcome, e2eMs: number): RequestResult {
  return {
    index: spec.index, startMs, outcome: s.complete ? "completed" : "failed", status, reason: s.reason,
    ttftMs: s.firstTokenMs, e2eMs, itlMs: s.itlMs, promptTokens: s.promptTokens,
    completionTokens: s.completionTokens ?? s.tokenEvents, cachedTokens: s.cachedTokens, text: s.text,
    ...(spec.sessionId !== undefined ? { sessionId: spec.sessionId } : {}),
  };
}

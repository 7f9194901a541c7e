import { readLogprobContent, type LogprobContent } from "./token-logprobs.js";

/**
 * One event of a worker's `/worker/decode` stream, classified: a token, the normal end, or an
 * error end. Anything else (not JSON, no token) is `null` and skipped by the reader.
 */
export type DecodeEvent =
  | { kind: "token"; text: string; seq: number | undefined; logprobs?: LogprobContent[] }
  | { kind: "end"; reason: string; promptTokens: number | undefined; completionTokens: number | undefined; text: string; cache?: unknown }
  | { kind: "error"; code: string; message: string };

export function parseDecodeEvent(data: string): DecodeEvent | null {
  let msg: Record<string, unknown>;
  try {
    msg = JSON.parse(data) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof msg !== "object" || msg === null) return null;
  if (msg.finished === true) {
    const err = msg.error as { code?: unknown; message?: unknown } | undefined;
    if (msg.reason === "error" || err !== undefined) {
      return {
        kind: "error",
        code: typeof err?.code === "string" ? err.code : "worker_error",
        message: typeof err?.message === "string" ? err.message : "the worker failed while decoding",
      };
    }
    return {
      kind: "end",
      reason: typeof msg.reason === "string" ? msg.reason : "stop",
      promptTokens: typeof msg.prompt_tokens === "number" ? msg.prompt_tokens : undefined,
      completionTokens: typeof msg.completion_tokens === "number" ? msg.completion_tokens : undefined,
      text: typeof msg.token === "string" ? msg.token : "",
      ...(msg.cache !== undefined ? { cache: msg.cache } : {}),
    };
  }
  if (typeof msg.token !== "string") return null;
  const logprobs = readLogprobContent(msg.logprobs);
  return { kind: "token", text: msg.token, seq: typeof msg.seq === "number" ? msg.seq : undefined, ...(logprobs !== undefined ? { logprobs } : {}) };
}

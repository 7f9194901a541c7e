import { readLogprobContent, type LogprobContent } from "./token-logprobs.js";
import type { PrefillResponse } from "./worker-api.js";

/**
 * One event of a worker's `/worker/decode` or `/worker/generate` stream, classified: the prefill's
 * acknowledgement (generate's first event), a token, the normal end, or an error end. Anything else
 * (not JSON, no token, an acknowledgement without the numbers the coordinator reads) is `null` and
 * skipped by the reader.
 */
export type DecodeEvent =
  | { kind: "prefill"; prefill: PrefillResponse }
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
  if (msg.prefill !== undefined) {
    const prefill = readPrefillAck(msg.prefill);
    return prefill === undefined ? null : { kind: "prefill", prefill };
  }
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

/**
 * The acknowledgement's PrefillResponse, kept whole, when the fields the coordinator reads are
 * there with their types (token counts and KV bytes as numbers, the worker's id as a string).
 */
function readPrefillAck(p: unknown): PrefillResponse | undefined {
  if (typeof p !== "object" || p === null || Array.isArray(p)) return undefined;
  const r = p as Record<string, unknown>;
  if (!isCount(r.prompt_tokens) || !isCount(r.cached_tokens) || !isCount(r.kv_cache_bytes)) return undefined;
  if (typeof r.worker_id !== "string") return undefined;
  if (r.max_tokens !== undefined && !isCount(r.max_tokens)) return undefined;
  return r as unknown as PrefillResponse;
}

/** A finite, non-negative number (tokens or bytes). */
function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

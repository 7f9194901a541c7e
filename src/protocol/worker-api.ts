import { ServingError } from "../common/serving-error.js";
import { readSampling, type SamplingParams } from "./sampling.js";
import { optionalInteger, requireInteger, requireSessionId, requireString, optionalString, type JsonObject } from "./validate.js";

/** The worker's HTTP contract (seed: /worker/prefill, /worker/decode, /worker/health), plus added fields. */

export const MAX_PROMPT_CHARS = 4_000_000;
export const MAX_TOKENS_CEILING = 100_000_000;

export interface PrefillRequest {
  session_id: string;
  prompt: string;
  model: string | undefined;
  max_tokens: number;
  /** Added: how to sample; the seed's clients send none (greedy). */
  sampling: SamplingParams;
}

export interface PrefillResponse {
  status: "ok";
  prompt_tokens: number;
  kv_cache_bytes: number;
  /** Added: prompt tokens whose KV was already held and not evaluated again. */
  cached_tokens: number;
  worker_id: string;
}

export interface DecodeRequest {
  session_id: string;
  /** At most the prefill's max_tokens; absent means the prefill's. */
  max_tokens: number | undefined;
}

export type StopReason = "length" | "stop" | "cancelled" | "error";

/** One SSE event of /worker/decode. The last has `finished: true` and carries no token text. */
export interface DecodeTokenEvent {
  token: string;
  seq: number;
}

export interface DecodeFinalEvent {
  token: "";
  seq: number;
  finished: true;
  reason: StopReason;
  prompt_tokens: number;
  completion_tokens: number;
  error?: { code: string; message: string };
}

export function parsePrefillRequest(o: JsonObject): PrefillRequest {
  const session_id = requireSessionId(o);
  const prompt = requireString(o, "prompt", { nonEmpty: true, maxLength: MAX_PROMPT_CHARS });
  const model = optionalString(o, "model", { maxLength: 256 });
  const max_tokens = requireInteger(o, "max_tokens", 1, MAX_TOKENS_CEILING);
  let sampling: SamplingParams = {};
  if (o.sampling !== undefined && o.sampling !== null) {
    if (typeof o.sampling !== "object" || Array.isArray(o.sampling)) {
      throw new ServingError("invalid_field", "'sampling' must be an object", { param: "sampling" });
    }
    sampling = readSampling(o.sampling as JsonObject);
  }
  return { session_id, prompt, model, max_tokens, sampling };
}

export function parseDecodeRequest(o: JsonObject): DecodeRequest {
  return { session_id: requireSessionId(o), max_tokens: optionalInteger(o, "max_tokens", 1, MAX_TOKENS_CEILING) };
}

export function parseCancelRequest(o: JsonObject): { session_id: string } {
  return { session_id: requireSessionId(o) };
}

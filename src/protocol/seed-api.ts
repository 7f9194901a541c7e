import { readSampling, type SamplingParams } from "./sampling.js";
import { optionalInteger, requireInteger, requireString, type JsonObject } from "./validate.js";
import { MAX_PRIORITY, MAX_PROMPT_CHARS } from "./limits.js";

/**
 * The seed's client API: `POST /coordinator/infer {prompt, model, max_tokens}` answered with SSE
 * events `{token, finished}`. Added, optional: the sampling fields of `SamplingParams` (greedy when
 * absent, so a seed client gets the model's most likely text) and `priority` (order in the
 * admission queue, lower first, as vLLM's).
 */
export interface InferRequest {
  prompt: string;
  model: string;
  max_tokens: number;
  sampling: SamplingParams;
  priority?: number;
}

// Re-exported for callers that read it with the seed API; it lives in limits.ts.
export { MAX_PRIORITY };

export function parseInferRequest(o: JsonObject, maxTokensLimit: number): InferRequest {
  const prompt = requireString(o, "prompt", { nonEmpty: true, maxLength: MAX_PROMPT_CHARS });
  const model = requireString(o, "model", { maxLength: 256 });
  const max_tokens = requireInteger(o, "max_tokens", 1, maxTokensLimit);
  const sampling = readSampling(o);
  if (sampling.temperature === undefined) sampling.temperature = 0;
  const priority = optionalInteger(o, "priority", -MAX_PRIORITY, MAX_PRIORITY);
  return { prompt, model, max_tokens, sampling, ...(priority !== undefined ? { priority } : {}) };
}

export interface InferTokenEvent {
  token: string;
  finished: false;
}

export interface InferFinalEvent {
  token: "";
  finished: true;
  reason: string;
  prompt_tokens?: number;
  completion_tokens?: number;
  error?: { code: string; message: string };
}

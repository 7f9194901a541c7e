import type { SamplingParams } from "../protocol/sampling.js";
import type { NativeSampling } from "./native-binding.js";
import { boundedSampling } from "./sampling-bounds.js";

/**
 * A request's sampling as the native sampler takes it, with the defaults the node-llama-cpp engine
 * applies (temperature 0.8, top-k 40, top-p 0.95, penalties over the last 64 generated tokens),
 * so both engines mean the same by the same request. `grammar` is GBNF, already resolved from a
 * JSON schema where the request gave one; `banned` tokens get a bias of -100 unless the request's
 * own logit_bias names them.
 */
export const DEFAULT_TEMPERATURE = 0.8;
export const DEFAULT_TOP_K = 40;
export const DEFAULT_TOP_P = 0.95;
export const PENALTY_LAST_N = 64;

export function nativeSampling(request: SamplingParams, grammar: string | undefined, banned: readonly number[] = []): NativeSampling {
  const s = boundedSampling(request);
  const out: NativeSampling = {
    temperature: s.temperature ?? DEFAULT_TEMPERATURE,
    // top_k ≤ 0 means the whole vocabulary, which the native side reads from 0.
    topK: s.top_k === undefined ? DEFAULT_TOP_K : Math.max(0, s.top_k),
    topP: s.top_p ?? DEFAULT_TOP_P,
    minP: s.min_p ?? 0,
    penaltyLastN: PENALTY_LAST_N,
    repeatPenalty: s.repeat_penalty ?? 1,
    presencePenalty: s.presence_penalty ?? 0,
    frequencyPenalty: s.frequency_penalty ?? 0,
  };
  if (s.seed !== undefined) out.seed = s.seed >>> 0;
  if (s.logit_bias !== undefined || banned.length > 0) {
    const bias = new Map<number, number>(banned.map((t) => [t, -100]));
    for (const [id, b] of Object.entries(s.logit_bias ?? {})) bias.set(Number(id), b);
    out.biasTokens = Int32Array.from(bias.keys());
    out.biasValues = Float32Array.from(bias.values());
  }
  if (grammar !== undefined) out.grammar = grammar;
  if (s.top_logprobs !== undefined) out.topLogprobs = s.top_logprobs;
  return out;
}

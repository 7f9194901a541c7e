import type { SamplingParams } from "../protocol/sampling.js";

/**
 * Sampling values that the API accepts but llama.cpp's samplers cannot compute with: a temperature
 * or repeat penalty so close to 0 that dividing logits by it overflows to ±inf, making every
 * probability NaN. A sampler then picks an arbitrary token, which a grammar may forbid: the
 * native engine would end the request as a dead end, node-llama-cpp's grammar throws uncaught and
 * ends the process. Both engines read requests through this, so both mean the same:
 * a temperature below MIN_TEMPERATURE is greedy (what it approaches), a repeat penalty below
 * MIN_REPEAT_PENALTY is that minimum.
 */
export const MIN_TEMPERATURE = 1e-3;
export const MIN_REPEAT_PENALTY = 1e-2;

export function boundedSampling(s: SamplingParams): SamplingParams {
  const out: SamplingParams = { ...s };
  if (s.temperature !== undefined && s.temperature < MIN_TEMPERATURE) out.temperature = 0;
  if (s.repeat_penalty !== undefined && s.repeat_penalty < MIN_REPEAT_PENALTY) out.repeat_penalty = MIN_REPEAT_PENALTY;
  return out;
}

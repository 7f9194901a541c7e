/**
 * The simulated engine's timing model, pure (the random draws are passed in):
 *
 *   prefill ms     = slow × (prefillBaseMs + prefillPerTokenMs × evaluated prompt tokens) × jitter(u)
 *   inter-token ms = slow × (itlMs + itlPerSequenceMs × (batch − 1)) × jitter(u)
 *   jitter(u)      = 1 + jitter × (2u − 1),   u uniform in [0, 1)
 *
 * Prompt tokens whose KV the sequence already holds cost nothing (prefix reuse). `batch` is the
 * count of sequences decoding on the engine at that step, so a busier engine streams each session
 * more slowly, as continuous batching does. `slow` ≥ 1 is the "answer slowly" fault. Defaults
 * (config.ts) resemble a small model on a CPU: 2 ms + 0.05 ms/token prefill, 20 ms between tokens
 * plus 0.5 ms per extra sequence in the batch.
 */
export interface SimTiming {
  prefillBaseMs: number;
  prefillPerTokenMs: number;
  itlMs: number;
  itlPerSequenceMs: number;
  /** Relative spread of every duration, in [0, 1): 0.1 means ±10 %. */
  jitter: number;
  /** Multiplies every duration (≥ 1). */
  slowFactor: number;
}

function jitterOf(t: SimTiming, u: number): number {
  return 1 + t.jitter * (2 * u - 1);
}

export function prefillMs(t: SimTiming, evaluatedTokens: number, u: number): number {
  return Math.max(0, t.slowFactor * (t.prefillBaseMs + t.prefillPerTokenMs * evaluatedTokens) * jitterOf(t, u));
}

export function interTokenMs(t: SimTiming, batch: number, u: number): number {
  return Math.max(0, t.slowFactor * (t.itlMs + t.itlPerSequenceMs * Math.max(0, batch - 1)) * jitterOf(t, u));
}

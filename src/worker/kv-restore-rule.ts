import type { KvTierName } from "./kv-tiers.js";

/**
 * When a new turn restores its conversation from a KV tier instead of prefilling it: restoring
 * costs `restoreMsPerToken[tier]` for each token of the saved state (the whole state is loaded),
 * and saves `prefillMsPerToken` for each prompt token the restore provides beyond what the chosen
 * slot already holds. Restore when the cost is below the saving: the crossover is measured, not
 * guessed — both rates come from a calibration at worker start (kv-calibration.ts) and are then
 * followed by an exponentially weighted mean of every prefill and restore the worker does.
 */
export interface KvCosts {
  prefillMsPerToken: number;
  restoreMsPerToken: Record<KvTierName, number>;
}

export interface RestoreChoice {
  restore: boolean;
  /** Prompt tokens the restore provides beyond the slot's own prefix. */
  gainTokens: number;
  restoreMs: number;
  prefillMs: number;
}

export function chooseRestore(costs: KvCosts, tier: KvTierName, stateTokens: number, tierPrefix: number, slotPrefix: number): RestoreChoice {
  const gainTokens = Math.max(0, tierPrefix - slotPrefix);
  const restoreMs = costs.restoreMsPerToken[tier] * stateTokens;
  const prefillMs = costs.prefillMsPerToken * gainTokens;
  return { restore: gainTokens > 0 && restoreMs < prefillMs, gainTokens, restoreMs, prefillMs };
}

/** Tokens of `prompt` a sequence holding `held` reuses (the last prompt token is always evaluated). */
export function reusablePrefix(held: readonly number[], prompt: readonly number[]): number {
  let n = 0;
  while (n < held.length && n + 1 < prompt.length && held[n] === prompt[n]) n++;
  return n;
}

/** Weight of a new observation in the running per-token rates. */
const EWMA_ALPHA = 0.2;
/** Observations over fewer tokens are mostly fixed overhead: they would skew a per-token rate. */
const MIN_TOKENS = 16;

export class KvCostModel {
  readonly costs: KvCosts;

  constructor(initial: KvCosts) {
    this.costs = { prefillMsPerToken: initial.prefillMsPerToken, restoreMsPerToken: { ...initial.restoreMsPerToken } };
  }

  observePrefill(tokens: number, ms: number): void {
    if (tokens < MIN_TOKENS || !(ms >= 0)) return;
    this.costs.prefillMsPerToken += EWMA_ALPHA * (ms / tokens - this.costs.prefillMsPerToken);
  }

  observeRestore(tier: KvTierName, tokens: number, ms: number): void {
    if (tokens < MIN_TOKENS || !(ms >= 0)) return;
    this.costs.restoreMsPerToken[tier] += EWMA_ALPHA * (ms / tokens - this.costs.restoreMsPerToken[tier]);
  }

  /**
   * What a tier hit is worth against a slot hit, in [0, 1]: 1 − restore/prefill per token (a
   * tier that restores as slowly as prefill is worth nothing). Published for the prefix scorer.
   */
  tierWeight(tier: KvTierName): number {
    const p = this.costs.prefillMsPerToken;
    if (!(p > 0)) return 0;
    return Math.min(1, Math.max(0, 1 - this.costs.restoreMsPerToken[tier] / p));
  }
}

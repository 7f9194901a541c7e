import { queuedOf } from "./load.js";
import type { Scorer } from "./types.js";

/** Scorers in [0,1], higher is better. */

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** 1 − session utilisation (the seed's 0.6 part). */
export const sessionLoad: Scorer = {
  name: "sessions",
  score: (c) => (c.maxSessions <= 0 ? 0 : 1 - clamp01(c.sessions / c.maxSessions)),
};

/** 1 − KV utilisation (the seed's 0.4 part). */
export const kvUtilisation: Scorer = {
  name: "kv",
  score: (c) => (c.maxKvBytes <= 0 ? 0 : 1 - clamp01(c.kvBytes / c.maxKvBytes)),
};

/**
 * 1 − in-flight sessions per decode slot: 1 idle, 0 once every slot is busy. Counted from dispatch
 * (the session tracker), so a burst spreads before the workers' next heartbeats. Without slot
 * counts (seed workers) it falls back to session utilisation.
 */
export const inFlight: Scorer = {
  name: "in_flight",
  score: (c, r) => (c.slotsTotal > 0 ? 1 - clamp01(c.sessions / c.slotsTotal) : sessionLoad.score(c, r)),
};

/** 1 / (1 + sessions queued for a slot inside the worker): tells apart workers that are all busy. */
export const queueDepth: Scorer = {
  name: "queue",
  score: (c) => 1 / (1 + queuedOf(c)),
};

/** 1 for the worker the request sticks to (its conversation's home), 0 for the others. */
export const sessionAffinity: Scorer = {
  name: "affinity",
  score: (c, r) => (r.affinity !== undefined && c.id === r.affinity ? 1 : 0),
};

/**
 * The share of the request's prompt blocks the worker holds in its prefix cache (prefix-index.ts);
 * blocks held in a KV tier count at the worker's tier weight (1 − its measured restore/prefill
 * cost per token), so a tier hit ranks below a slot hit of the same length.
 */
export const prefixMatch: Scorer = {
  name: "prefix",
  score: (c, r) => {
    if (r.prefix === undefined || r.prefix.blocks === 0) return 0;
    const slot = r.prefix.matched.get(c.id) ?? 0;
    const t = r.prefix.tiers?.get(c.id);
    const tier = t === undefined || c.kvTierWeight === undefined ? 0 : t.blocks * c.kvTierWeight[t.tier];
    return clamp01(Math.max(slot, tier) / r.prefix.blocks);
  },
};

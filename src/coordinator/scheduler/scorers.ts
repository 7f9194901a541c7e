import type { Scorer } from "./types.js";

/** Scorers in [0,1], higher is better. */

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

/** 1 − session utilisation. */
export const sessionLoad: Scorer = {
  name: "sessions",
  score: (c) => (c.maxSessions <= 0 ? 0 : 1 - clamp01(c.sessions / c.maxSessions)),
};

/** 1 − KV utilisation. */
export const kvUtilisation: Scorer = {
  name: "kv",
  score: (c) => (c.maxKvBytes <= 0 ? 0 : 1 - clamp01(c.kvBytes / c.maxKvBytes)),
};

/** 1 for the worker holding the request's conversation (its KV cache), 0 for the others. */
export const sessionAffinity: Scorer = {
  name: "affinity",
  score: (c, r) => (r.affinity !== undefined && c.id === r.affinity ? 1 : 0),
};

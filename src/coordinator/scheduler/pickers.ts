import type { Picker, ScoredCandidate } from "./types.js";

/**
 * Highest total wins; exact ties go to the worker id that sorts first, so the same inputs give
 * the same pick (several coordinators agree without talking).
 */
export const maxScore: Picker = {
  name: "max_score",
  pick: (scored) => {
    let best = scored[0]!;
    for (const s of scored) {
      if (s.total > best.total || (s.total === best.total && s.candidate.id < best.candidate.id)) best = s;
    }
    return best;
  },
};

/** The candidates in worker-id order, in turn: request n takes the (n mod count)-th. Ignores scores. */
export const roundRobin: Picker = {
  name: "round_robin",
  pick: (scored, _r, ctx) => {
    const byId = [...scored].sort((a, b) => (a.candidate.id < b.candidate.id ? -1 : a.candidate.id > b.candidate.id ? 1 : 0));
    return byId[(ctx.sequence ?? 0) % byId.length]!;
  },
};

export function byTotalDescending(a: ScoredCandidate, b: ScoredCandidate): number {
  return b.total - a.total || (a.candidate.id < b.candidate.id ? -1 : a.candidate.id > b.candidate.id ? 1 : 0);
}

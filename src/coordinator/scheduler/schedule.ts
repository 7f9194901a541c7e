import { byTotalDescending } from "./pickers.js";
import type { Candidate, Decision, Profile, RouteRequest, ScheduleContext, ScoredCandidate } from "./types.js";

/**
 * Runs a profile over a snapshot: filters, then weighted scorers, then the picker. Pure: no I/O,
 * no clock or randomness but what `ctx` gives, no mutation of its inputs. Claiming the pick's
 * capacity is the caller's job, after the decision.
 */
export function schedule(profile: Profile, candidates: readonly Candidate[], req: RouteRequest, ctx: ScheduleContext): Decision {
  const dropped: Record<string, number> = {};
  const kept: Candidate[] = [];
  outer: for (const c of candidates) {
    for (const f of profile.filters) {
      if (!f.keep(c, req)) {
        dropped[f.name] = (dropped[f.name] ?? 0) + 1;
        continue outer;
      }
    }
    kept.push(c);
  }
  if (kept.length === 0) return { ok: false, profile: profile.name, considered: candidates.length, dropped };
  const weightSum = profile.scorers.reduce((a, s) => a + s.weight, 0) || 1;
  const scored: ScoredCandidate[] = kept.map((candidate) => {
    const scores: Record<string, number> = {};
    let total = 0;
    for (const { scorer, weight } of profile.scorers) {
      const s = scorer.score(candidate, req);
      scores[scorer.name] = s;
      total += s * weight;
    }
    return { candidate, total: total / weightSum, scores };
  });
  const pick = profile.picker.pick(scored, req, ctx);
  const runnerUp = scored.filter((s) => s !== pick).sort(byTotalDescending)[0];
  return { ok: true, profile: profile.name, pick, runnerUp, considered: candidates.length, dropped };
}

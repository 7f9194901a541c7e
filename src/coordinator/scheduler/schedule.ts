import { loadOf } from "./load.js";
import { byTotalDescending } from "./pickers.js";
import { rendezvousHome } from "./rendezvous.js";
import type { Candidate, Decision, Profile, RouteRequest, ScheduleContext, ScoredCandidate } from "./types.js";

/**
 * Runs a profile over a snapshot: filters; the conversation's rendezvous home among the kept
 * candidates (when the request has an affinity key and no explicit worker); the saturation guard;
 * weighted scorers; the picker. Pure: no I/O, no clock or randomness but what `ctx` gives, no
 * mutation of its inputs. Claiming the pick's capacity is the caller's job, after the decision.
 *
 * The total is the weighted mean of the scores (weights normalised to sum to 1), so it is in [0,1].
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

  const home = req.affinity === undefined && req.affinityKey !== undefined ? rendezvousHome(req.affinityKey, kept.map((c) => c.id)) : undefined;
  const r: RouteRequest = home === undefined ? req : { ...req, affinity: home };

  const saturated = new Set<string>();
  const guard = profile.saturation;
  if (guard !== undefined) {
    for (const c of kept) if (loadOf(c) >= guard.threshold) saturated.add(c.id);
    // All saturated: nobody is spared the load, so the cache may as well decide.
    if (saturated.size === kept.length) saturated.clear();
  }

  const weightSum = profile.scorers.reduce((a, s) => a + s.weight, 0) || 1;
  const scored: ScoredCandidate[] = kept.map((candidate) => {
    const scores: Record<string, number> = {};
    let total = 0;
    const gated = saturated.has(candidate.id) ? guard!.gated : undefined;
    for (const { scorer, weight } of profile.scorers) {
      const s = gated?.includes(scorer.name) ? 0 : scorer.score(candidate, r);
      scores[scorer.name] = s;
      total += s * weight;
    }
    return { candidate, total: total / weightSum, scores };
  });
  const pick = profile.picker.pick(scored, r, ctx);
  const ranked = [...scored].sort(byTotalDescending);
  const runnerUp = ranked.find((s) => s !== pick);
  return {
    ok: true, profile: profile.name, pick, runnerUp, considered: candidates.length, dropped, ranked,
    saturated: [...saturated].sort(), home: r.affinity,
  };
}

import { DEFAULT_FILTERS } from "./filters.js";
import { maxScore } from "./pickers.js";
import { kvUtilisation, sessionAffinity, sessionLoad } from "./scorers.js";
import type { Profile } from "./types.js";

/** The seed's rule: lowest 0.6 × session utilisation + 0.4 × KV utilisation among live workers. */
export const seedProfile: Profile = {
  name: "seed",
  filters: DEFAULT_FILTERS,
  scorers: [
    { scorer: sessionLoad, weight: 0.6 },
    { scorer: kvUtilisation, weight: 0.4 },
  ],
  picker: maxScore,
};

export const PROFILES: Readonly<Record<string, Profile>> = { seed: seedProfile };

/**
 * Weight of session affinity over a profile whose weights sum to 1: 2 makes the worker holding a
 * conversation win whenever the filters keep it (its total is at least 2/3, any other's at most
 * 1/3); a holder that is gone, unhealthy or full is filtered out and the conversation moves.
 */
export const AFFINITY_WEIGHT = 2;

const withAffinityCache = new WeakMap<Profile, Profile>();

/** The profile used for requests of a conversation: the base one plus session affinity. */
export function withAffinity(base: Profile): Profile {
  let p = withAffinityCache.get(base);
  if (p === undefined) {
    p = { ...base, name: `${base.name}+affinity`, scorers: [...base.scorers, { scorer: sessionAffinity, weight: AFFINITY_WEIGHT }] };
    withAffinityCache.set(base, p);
  }
  return p;
}

import { DEFAULT_FILTERS } from "./filters.js";
import { maxScore } from "./pickers.js";
import { kvUtilisation, sessionLoad } from "./scorers.js";
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

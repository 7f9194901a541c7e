import type { SchedulerProfileName } from "../../common/config.js";
import { DEFAULT_FILTERS } from "./filters.js";
import { maxScore, roundRobin } from "./pickers.js";
import { inFlight, kvUtilisation, prefixMatch, queueDepth, sessionAffinity, sessionLoad } from "./scorers.js";
import type { Profile } from "./types.js";

/**
 * The routing profiles, selected by SCHEDULER_PROFILE. Every one runs the same filters (routable,
 * serves the model, not tried yet, room for the session and its KV); they differ in scorers.
 *
 *   cache-aware (default): prefix 3, affinity 0.5, in_flight 1, queue 0.5, kv 0.5, with the
 *     saturation guard on prefix and affinity. A worker holding most of the prompt wins unless it
 *     is saturated (the guard: then load decides, never a cache alone); among workers holding the
 *     same share (a shared system prompt, a new conversation), the conversation's rendezvous home
 *     wins unless it has more than half its decode slots busier than another; then load decides.
 *     A conversation whose cache moved (its home was busy) follows its cache, not its home.
 *   seed: 0.6 × (1 − session utilisation) + 0.4 × (1 − KV utilisation), the seed's rule.
 *   least-load: in_flight 0.6, queue 0.2, kv 0.2: fewest sessions per decode slot.
 *   round-robin: every kept candidate in turn, scores ignored (for comparison).
 */

/**
 * Load (scheduler/load.ts) from which cache scores stop counting: every decode slot busy, so the
 * request would wait inside the worker for a running answer to end. A conversation then moves to a
 * worker with a free slot and pays one prefill of its history there; its later turns follow its
 * cache, so the fleet settles with no worker holding more conversations than slots. A higher
 * threshold keeps more turns on their cache (fewer cold prefills, a better p99 in a short run) but
 * lets a queue persist on a worker holding more conversations than slots (a worse p50: measured in
 * docs/PERFORMANCE.md, section 6).
 */
export const DEFAULT_SATURATION = 1;

export const seedProfile: Profile = {
  name: "seed",
  filters: DEFAULT_FILTERS,
  scorers: [
    { scorer: sessionLoad, weight: 0.6 },
    { scorer: kvUtilisation, weight: 0.4 },
  ],
  picker: maxScore,
};

export const leastLoadProfile: Profile = {
  name: "least-load",
  filters: DEFAULT_FILTERS,
  scorers: [
    { scorer: inFlight, weight: 0.6 },
    { scorer: queueDepth, weight: 0.2 },
    { scorer: kvUtilisation, weight: 0.2 },
  ],
  picker: maxScore,
};

export const roundRobinProfile: Profile = {
  name: "round-robin",
  filters: DEFAULT_FILTERS,
  scorers: [],
  picker: roundRobin,
};

export function cacheAwareProfile(saturation = DEFAULT_SATURATION): Profile {
  return {
    name: "cache-aware",
    filters: DEFAULT_FILTERS,
    scorers: [
      { scorer: prefixMatch, weight: 3 },
      { scorer: sessionAffinity, weight: 0.5 },
      { scorer: inFlight, weight: 1 },
      { scorer: queueDepth, weight: 0.5 },
      { scorer: kvUtilisation, weight: 0.5 },
    ],
    picker: maxScore,
    saturation: { threshold: saturation, gated: [prefixMatch.name, sessionAffinity.name] },
  };
}

export function profileNamed(name: SchedulerProfileName, saturation = DEFAULT_SATURATION): Profile {
  switch (name) {
    case "cache-aware":
      return cacheAwareProfile(saturation);
    case "seed":
      return seedProfile;
    case "least-load":
      return leastLoadProfile;
    case "round-robin":
      return roundRobinProfile;
  }
}

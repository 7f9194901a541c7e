import { intOpt, numberOpt, optionalStrOpt, type ConfigOf } from "../../common/config-parse.js";

/**
 * Options of `npm run soak` (flags only): a long run at a steady share of the fleet's session
 * capacity, with clients hanging up at random, watching memory and sessions over time.
 */
export const soakOptions = {
  durationS: numberOpt(undefined, "--duration-s", 600, 10, 86_400, "length of the load (s)"),
  load: numberOpt(undefined, "--load", 0.8, 0.01, 1, "share of the fleet's session capacity kept in flight (closed loop)"),
  disconnect: numberOpt(undefined, "--disconnect", 0.2, 0, 1, "share of requests whose client hangs up at a random moment"),
  workers: intOpt(undefined, "--workers", 2, 1, 16, "sim workers"),
  workerMaxSessions: intOpt(undefined, "--worker-max-sessions", 16, 1, 10_000, "sessions each worker holds: capacity is workers × this"),
  sampleS: numberOpt(undefined, "--sample-s", 5, 0.5, 3600, "seconds between two samples of memory and sessions"),
  warmupS: numberOpt(undefined, "--warmup-s", 60, 0, 3600, "RSS growth is measured from the end of the warm-up (capped at a third of the run)"),
  windowS: numberOpt(undefined, "--window-s", 30, 1, 3600, "RSS at a point is the median of the samples of this window (s)"),
  maxRssGrowth: numberOpt(undefined, "--max-rss-growth", 0.1, 0, 10, "largest RSS growth allowed for any process (0.1 = 10%)"),
  requestTimeoutMs: intOpt(undefined, "--request-timeout-ms", 60_000, 1000, 3_600_000, "a request still open this long is hung"),
  seed: intOpt(undefined, "--seed", 1, 0, 2 ** 32 - 1, "seed of request kinds, lengths and disconnects"),
  json: optionalStrOpt(undefined, "--json", "also write the samples and the verdict as JSON to this file"),
};

export type SoakConfig = ConfigOf<typeof soakOptions>;

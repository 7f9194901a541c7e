import { describe, it } from "node:test";
import { assertInvariants, scenario } from "../helpers/chaos/chaos-catalog.js";
import { describeOutcome } from "../helpers/chaos/chaos-outcome.js";

/**
 * A bounded part of the chaos suite in `npm test` (the whole suite is `npm run test:chaos`): 20
 * concurrent streams, no quiet run. A worker killed mid-decode, a worker frozen and resumed (the
 * prefilled sessions it could no longer hand over are freed), a burst at five times capacity right
 * after a burst at capacity (the fleet's own releases count at once, not at the next heartbeat).
 */
const KEYS = ["kill-mid-decode", "sigstop", "burst"];

describe("chaos subset", () => {
  for (const key of KEYS) {
    const s = scenario(key);
    it(s.name, { timeout: 120_000 }, async () => {
      const o = await s.run({ streams: 20, quiet: key === "burst" });
      console.log(`# ${describeOutcome(o)}`);
      assertInvariants(o);
      s.check(o);
    });
  }
});

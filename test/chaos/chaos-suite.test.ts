import { after, describe, it } from "node:test";
import { CHAOS_SCENARIOS, assertInvariants } from "../helpers/chaos/chaos-catalog.js";
import { describeOutcome, type ScenarioOutcome } from "../helpers/chaos/chaos-outcome.js";
import { writeResults } from "../helpers/chaos/failure-modes-doc.js";

/**
 * The chaos suite (`npm run test:chaos`): every scenario with 24 concurrent streams, each after a
 * quiet run of the same workload on the same processes. Each must end with no stream hung and
 * nothing leaked, plus its own outcome checks. When every scenario passed, the measured table is
 * written into docs/FAILURE_MODES.md.
 */
const STREAMS = 24;
const outcomes: ScenarioOutcome[] = [];
const skipped: string[] = [];
let failures = 0;
const t0 = performance.now();

describe("chaos suite", () => {
  for (const s of CHAOS_SCENARIOS) {
    if (s.skip !== undefined) skipped.push(`${s.key} (${s.skip})`);
    it(s.name, { skip: s.skip, timeout: 240_000 }, async () => {
      try {
        const o = await s.run({ streams: STREAMS, quiet: true });
        outcomes.push(o);
        console.log(`# ${describeOutcome(o)}`);
        assertInvariants(o);
        s.check(o);
      } catch (err) {
        failures++;
        throw err;
      }
    });
  }

  after(() => {
    if (failures === 0 && outcomes.length > 0) writeResults(outcomes, { durationS: (performance.now() - t0) / 1000, skipped });
  });
});

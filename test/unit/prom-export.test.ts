import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { labelled, registerScrapeMetric, type Sample } from "../../src/common/prom-export.js";

describe("metrics read at scrape time", () => {
  it("render as prom-client counters and gauges filled by collect(), a gone label set gone", async () => {
    const r = new Registry();
    let n = 3;
    const ends = new Map([["stop", 2], ["length", 5]]);
    registerScrapeMetric(r, { name: "t_sessions", help: "Sessions", type: "gauge", read: () => n });
    registerScrapeMetric(r, { name: "t_ends_total", help: "Ends", type: "counter", read: labelled(["reason"], () => [...ends].map(([reason, v]): Sample => [{ reason }, v])) });
    assert.equal(await r.metrics(), [
      "# HELP t_sessions Sessions", "# TYPE t_sessions gauge", "t_sessions 3", "",
      "# HELP t_ends_total Ends", "# TYPE t_ends_total counter", 't_ends_total{reason="stop"} 2', 't_ends_total{reason="length"} 5', "",
    ].join("\n"));
    n = 1;
    ends.delete("stop");
    const text = await r.metrics();
    assert.match(text, /^t_sessions 1$/m);
    assert.doesNotMatch(text, /reason="stop"/);
  });
});

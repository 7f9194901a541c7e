import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { cpuProfileTable, shortUrl, summarizeCpuProfile, type CpuProfile } from "../../src/bench/perf/cpu-profile-summary.js";

const frame = (functionName: string, url = "", lineNumber = -1, columnNumber = -1) => ({ functionName, url, lineNumber, columnNumber });

/**
 * Six samples; a sample lasts until the next one (the last until endTime):
 *   relay 100 + 20 + 30 (two call sites of one function) = 150 µs, parse 50, (program) 40, (idle) 200.
 */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 3, 4, 7] },
    { id: 2, callFrame: frame("(idle)") },
    { id: 3, callFrame: frame("(program)") },
    { id: 4, callFrame: frame("relay", "file:///work/app/dist/src/coordinator/stream/relay.js", 9, 2), children: [5] },
    { id: 5, callFrame: frame("parse", "file:///work/app/node_modules/undici/lib/parse.js", 0, 4) },
    { id: 7, callFrame: frame("onData", "node:internal/streams/readable", 3, 1), children: [6] },
    { id: 6, callFrame: frame("relay", "file:///work/app/dist/src/coordinator/stream/relay.js", 9, 2) },
  ],
  startTime: 1000,
  endTime: 1450,
  samples: [4, 5, 4, 2, 6, 3],
  timeDeltas: [10, 100, 50, 20, 200, 30],
};

describe("the CPU profile summary", () => {
  it("sums a function's self time over its call sites and ranks functions by it", () => {
    const s = summarizeCpuProfile(profile, { top: 3, tokens: 10 });
    assert.equal(s.totalUs, 440);
    assert.equal(s.busyUs, 240);
    assert.deepEqual(s.top, [
      { name: "relay", where: "src/coordinator/stream/relay.js:10", selfUs: 150, share: 150 / 240, usPerToken: 15 },
      { name: "parse", where: "undici/lib/parse.js:1", selfUs: 50, share: 50 / 240, usPerToken: 5 },
      { name: "(program)", where: "", selfUs: 40, share: 40 / 240, usPerToken: 4 },
    ]);
  });

  it("leaves the per-token cost out when no tokens are given, and keeps only the top N", () => {
    const s = summarizeCpuProfile(profile, { top: 1 });
    assert.deepEqual(s.top, [{ name: "relay", where: "src/coordinator/stream/relay.js:10", selfUs: 150, share: 150 / 240 }]);
  });

  it("summarizes a profile without samples as empty", () => {
    const s = summarizeCpuProfile({ nodes: profile.nodes, startTime: 0, endTime: 5 }, { top: 5 });
    assert.deepEqual(s, { totalUs: 0, busyUs: 0, top: [] });
  });

  it("prints a markdown table with a µs/token column when tokens were given", () => {
    assert.equal(cpuProfileTable(summarizeCpuProfile(profile, { top: 2, tokens: 10 })), [
      "| function | where | self ms | % of busy | µs/token |",
      "|---|---:|---:|---:|---:|",
      "| relay | src/coordinator/stream/relay.js:10 | 0.15 | 62.5% | 15 |",
      "| parse | undici/lib/parse.js:1 | 0.05 | 20.8% | 5 |",
    ].join("\n"));
    assert.ok(!cpuProfileTable(summarizeCpuProfile(profile, { top: 2 })).includes("µs/token"));
  });

  it("shortens script URLs to the project's dist path or the dependency's path", () => {
    assert.equal(shortUrl("file:///a/b/dist/src/x.js"), "src/x.js");
    assert.equal(shortUrl("file:///a/node_modules/undici/lib/y.js"), "undici/lib/y.js");
    assert.equal(shortUrl("node:internal/streams/readable"), "node:internal/streams/readable");
  });
});

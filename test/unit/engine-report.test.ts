import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { meetsGoal, median, pairedRatio, ratios, renderTable, type Cell } from "../../src/bench/worker-vs-llama/engine-report.js";

describe("the worker-vs-llama-server report", () => {
  it("takes medians of odd and even counts", () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });

  const side: Cell = { model: "m", streams: 4, workerTps: [90, 100, 110], workerTtftMs: [12, 10, 11], serverTps: [100, 95, 120], serverTtftMs: [10, 9, 10] };
  it("compares each repetition with its partner, and takes the median of those ratios", () => {
    // Repetition 3 ran under load on both sides: its low speeds cancel out in its own ratio.
    assert.equal(pairedRatio([100, 110, 20], [100, 100, 25]), 1);
    const r = ratios(side);
    assert.equal(r.tpsRatio, 110 / 120);
    assert.equal(r.workerTps, 100);
    assert.equal(r.ttftRatio, 10 / 9);
  });

  const cases: { name: string; cell: Cell; goal: boolean | undefined }[] = [
    { name: "0.9× at 4 streams with TTFT 1.1× meets the goal", cell: { ...side, workerTps: [90], serverTps: [100] }, goal: true },
    { name: "0.89× at 4 streams does not", cell: { ...side, workerTps: [89], serverTps: [100] }, goal: false },
    { name: "0.95× at 8 streams does not (1.0× needed)", cell: { ...side, streams: 8, workerTps: [95], serverTps: [100] }, goal: false },
    { name: "TTFT 1.3× does not", cell: { ...side, workerTtftMs: [13], serverTtftMs: [10] }, goal: false },
    { name: "without a reference there is no verdict", cell: { model: "m", streams: 1, workerTps: [1], workerTtftMs: [1] }, goal: undefined },
  ];
  for (const c of cases) it(c.name, () => assert.equal(meetsGoal(c.cell), c.goal));

  it("says when the reference is perf-anchor.md's numbers", () => {
    const table = renderTable([{ model: "tiny15m", streams: 1, workerTps: [400], workerTtftMs: [10], anchor: { tps: [393, 396], ttftMs: [10, 10] } }]);
    assert.match(table, /\| tiny15m \| 1 \| 400 \| 393–396 \(anchor\) \| 1\.01× \| 10\.0 \| 10–10 \(anchor\) \| 1\.00× \| yes \|/);
  });
});

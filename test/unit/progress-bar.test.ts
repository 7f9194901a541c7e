import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { barCells, ProgressBar } from "../../src/common/progress-bar.js";
import { DownloadProgress } from "../../src/cli/download-progress.js";

function sink(isTTY: boolean): { isTTY: boolean; out: string[]; write(s: string): void } {
  const out: string[] = [];
  return { isTTY, out, write: (s: string) => void out.push(s) };
}

describe("the shared progress bar", () => {
  it("fills its cells by the share done, clamped to 0..1", () => {
    assert.equal(barCells(0.5), `[${"#".repeat(15)}${"-".repeat(15)}]`);
    assert.equal(barCells(2, "."), `[${"#".repeat(30)}]`);
    assert.equal(barCells(-1, "."), `[${".".repeat(30)}]`);
  });

  it("on a terminal redraws one line at most every 100 ms, a forced state always, and ends the line once", () => {
    const s = sink(true);
    const bar = new ProgressBar(s);
    bar.show("a");
    bar.show("b");
    bar.show("c", { now: true });
    bar.done();
    bar.done();
    assert.deepEqual(s.out, ["\ra\x1b[K", "\rc\x1b[K", "\n"]);
  });

  it("off a terminal writes only milestones, as whole lines", () => {
    const s = sink(false);
    const bar = new ProgressBar(s);
    bar.show("a");
    bar.show("b", { milestone: true, now: true });
    bar.done();
    assert.deepEqual(s.out, ["b\n"]);
  });

  it("forced off a terminal, it draws nothing but milestones", () => {
    const s = sink(true);
    const bar = new ProgressBar(s, false);
    bar.show("a", { now: true });
    bar.show("b", { now: true, milestone: true });
    assert.deepEqual(s.out, ["b\n"]);
  });

  it("a download off a terminal writes one line per 10%", () => {
    const s = sink(false);
    const p = new DownloadProgress(s, "pull");
    for (let b = 0; b <= 100; b += 5) p.update(b, 100);
    assert.equal(s.out.length, 10);
    assert.match(s.out.at(-1)!, /^pull \[#{30}\] 100%  100 B \/ 100 B/);
  });
});

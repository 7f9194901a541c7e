import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BucketHistogram } from "../../src/common/bucket-histogram.js";
import { RateWindow } from "../../src/common/rate-window.js";

describe("BucketHistogram", () => {
  it("counts each value in the first bucket whose bound holds it, +Inf past the last", () => {
    const h = new BucketHistogram([1, 2, 4]);
    for (const v of [0, 1, 1.5, 2, 3, 4, 5, 100]) h.observe(v);
    assert.deepEqual([...h.counts], [2, 2, 2, 2]);
    assert.equal(h.count, 8);
    assert.equal(h.sum, 116.5);
  });

  it("observeMany adds n observations of one value at once", () => {
    const h = new BucketHistogram([1, 2]);
    h.observeMany(1.5, 4);
    h.observeMany(0.5, 0);
    h.observeMany(Number.NaN, 3);
    assert.deepEqual([...h.counts], [0, 4, 0]);
    assert.equal(h.count, 4);
    assert.equal(h.sum, 6);
  });

  const table: { name: string; values: number[]; q: number; want: number | undefined }[] = [
    { name: "empty", values: [], q: 0.5, want: undefined },
    { name: "median inside the first bucket", values: [0.5, 0.5], q: 0.5, want: 0.5 },
    { name: "interpolates inside a bucket", values: [1.5, 1.5, 1.5, 1.5], q: 0.5, want: 1.5 },
    { name: "p100 at the bucket's upper bound", values: [1.5, 1.5, 3], q: 1, want: 4 },
    { name: "past the last bound reads the last bound", values: [100], q: 0.5, want: 4 },
    { name: "p25 of one value per bucket", values: [0.5, 1.5, 3, 100], q: 0.25, want: 1 },
  ];
  for (const c of table) {
    it(`quantile: ${c.name}`, () => {
      const h = new BucketHistogram([1, 2, 4]);
      for (const v of c.values) h.observe(v);
      assert.equal(h.quantile(c.q), c.want);
    });
  }

  it("adds another histogram and resets to empty", () => {
    const a = new BucketHistogram([1, 2]);
    const b = new BucketHistogram([1, 2]);
    a.observe(0.5);
    b.observe(1.5);
    b.observe(3);
    a.add(b);
    assert.deepEqual([...a.counts], [1, 1, 1]);
    assert.equal(a.sum, 5);
    a.reset();
    assert.equal(a.count, 0);
    assert.equal(a.quantile(0.5), undefined);
  });

  it("refuses bounds that do not increase", () => {
    assert.throws(() => new BucketHistogram([1, 1]), /must increase/);
  });
});

describe("RateWindow", () => {
  it("is zero before any event", () => {
    assert.equal(new RateWindow(10).rate(5000), 0);
  });

  it("divides by the time covered, at least one second", () => {
    const w = new RateWindow(10);
    w.add(10, 1000);
    assert.equal(w.rate(1000), 10, "a burst at the first event reads over 1 s, not as a spike");
    w.add(10, 2500);
    assert.equal(w.rate(3000), 10, "20 events over 2 s");
  });

  it("forgets seconds that left the window", () => {
    const w = new RateWindow(10);
    w.add(100, 0);
    w.add(50, 12_000);
    // The window now covers seconds 3..12 (9 s and the current one so far): only the 50 remain.
    assert.equal(w.rate(12_000), 50 / 9);
    assert.equal(w.rate(30_000), 0);
  });

  it("reuses a slot when its second comes round again", () => {
    const w = new RateWindow(2);
    w.add(5, 0);
    w.add(7, 2000);
    assert.equal(w.rate(2000), 7, "second 0's count was replaced by second 2's");
  });
});

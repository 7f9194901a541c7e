import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BoundedChannel } from "../../src/common/bounded-channel.js";

const tick = () => new Promise((r) => setImmediate(r));

describe("BoundedChannel", () => {
  it("accepts up to its capacity without waiting, then makes the producer wait", async () => {
    const ch = new BoundedChannel<number>(2);
    assert.equal(await ch.push(1), true);
    assert.equal(await ch.push(2), true);
    let third = false;
    const p = ch.push(3).then((ok) => (third = ok));
    await tick();
    assert.equal(third, false, "a full channel holds the producer back");
    assert.deepEqual(ch.drain(), [1, 2]);
    await p;
    assert.equal(third, true);
    assert.deepEqual(ch.drain(), [3]);
  });

  it("ends the consumer's iteration after close, with queued items first", async () => {
    const ch = new BoundedChannel<string>(4);
    await ch.push("a");
    await ch.push("b");
    ch.close();
    const got: string[] = [];
    for await (const x of ch) got.push(x);
    assert.deepEqual(got, ["a", "b"]);
    assert.equal(await ch.push("c"), false, "no push after close");
  });

  it("wakes a waiting producer with false on abort and drops queued items", async () => {
    const ch = new BoundedChannel<number>(1);
    await ch.push(1);
    const p = ch.push(2);
    ch.abort();
    assert.equal(await p, false);
    assert.equal(ch.size, 0);
    assert.equal(await ch.waitReadable(), false);
  });

  it("wakes a waiting consumer when an item arrives", async () => {
    const ch = new BoundedChannel<number>(1);
    const readable = ch.waitReadable();
    await tick();
    await ch.push(7);
    assert.equal(await readable, true);
    assert.deepEqual(ch.drain(), [7]);
  });

  it("keeps order under many producer/consumer turns", async () => {
    const ch = new BoundedChannel<number>(3);
    const N = 1000;
    const producer = (async () => {
      for (let i = 0; i < N; i++) assert.equal(await ch.push(i), true);
      ch.close();
    })();
    const got: number[] = [];
    for await (const x of ch) {
      got.push(x);
      assert.ok(ch.size <= 3);
    }
    await producer;
    assert.deepEqual(got, Array.from({ length: N }, (_, i) => i));
  });

  it("rejects a capacity below 1", () => {
    assert.throws(() => new BoundedChannel(0), RangeError);
  });
});

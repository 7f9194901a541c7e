import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KeptSequences, type KeptSequence } from "../../src/worker/kept-sequences.js";

describe("kept sequences (a worker's prefix cache between sessions)", () => {
  it("keeps one sequence per conversation and one sequence per slot", () => {
    const k = new KeptSequences();
    assert.deepEqual(k.keep("a", 0, 100, 1), []);
    assert.deepEqual(k.keep("b", 1, 50, 2), []);
    assert.equal(k.count, 2);
    assert.equal(k.tokens, 150);
    // a's next turn ended on slot 2: its old slot no longer keeps it
    assert.deepEqual(k.keep("a", 2, 120, 3), []);
    assert.equal(k.atSlot(0), undefined);
    assert.equal(k.get("a")!.slotIndex, 2);
    assert.equal(k.tokens, 170);
    // c ends on b's slot: b is replaced
    assert.deepEqual(k.keep("c", 1, 10, 4).map((e) => e.conversationId), ["b"]);
    assert.equal(k.get("b"), undefined);
    assert.deepEqual(k.all().map((e) => e.conversationId), ["a", "c"]);
    assert.equal(k.tokens, 130);
  });

  it("keeps anonymous sequences too, counted apart from conversations", () => {
    const k = new KeptSequences();
    k.keep(undefined, 0, 40, 1);
    k.keep("a", 1, 100, 2);
    k.keep(undefined, 2, 7, 3);
    assert.equal(k.count, 3);
    assert.equal(k.tokens, 147);
    assert.equal(k.conversations, 1);
    assert.equal(k.conversationTokens, 100);
    // an anonymous sequence on a's slot replaces a
    assert.deepEqual(k.keep(undefined, 1, 5, 4).map((e) => e.conversationId), ["a"]);
    assert.equal(k.conversations, 0);
    assert.equal(k.conversationTokens, 0);
    assert.equal(k.tokens, 52);
  });

  it("orders by recency: least recently used first, skipping the conversation being served", () => {
    const k = new KeptSequences();
    k.keep("a", 0, 1, 1);
    k.keep("b", 1, 1, 2);
    k.keep("c", 2, 1, 3);
    k.keep("a", 0, 2, 4);
    assert.equal(k.leastRecentlyUsed()!.conversationId, "b");
    assert.equal(k.leastRecentlyUsed("b")!.conversationId, "c");
    assert.deepEqual(k.all().map((e) => k.recencyRank(e)), [0, 1, 2]);
    const b = k.get("b")!;
    assert.equal(k.remove(b), true);
    assert.equal(k.remove(b), false, "removing twice is a no-op");
    assert.equal(k.tokens, 3);
  });

  it("expires entries idle past the TTL", () => {
    const k = new KeptSequences();
    k.keep("a", 0, 1, 1000);
    k.keep(undefined, 1, 1, 5000);
    assert.deepEqual(k.expired(6001, 5000).map((e) => e.conversationId), ["a"]);
    assert.deepEqual(k.expired(6000, 5000), []);
  });

  it("tells its listener of every entry added and removed, replacements included", () => {
    const seen: string[] = [];
    const k = new KeptSequences({
      added: (e: KeptSequence) => seen.push(`+${e.id}:${e.blocks.join(",")}`),
      removed: (e: KeptSequence) => seen.push(`-${e.id}`),
    });
    k.keep("a", 0, 10, 1, ["k1"]);
    k.keep(undefined, 1, 10, 2, ["k2", "k3"]);
    k.keep("a", 1, 20, 3, ["k4"]);
    k.remove(k.get("a")!);
    assert.deepEqual(seen, ["+1:k1", "+2:k2,k3", "-1", "-2", "+3:k4", "-3"]);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PrefixIndex } from "../../src/coordinator/fleet/prefix-index.js";
import { BLOCK_CHARS, blockKeyList, canonicalText } from "../../src/protocol/prefix-blocks.js";
import type { CacheEvent, HeartbeatCache } from "../../src/protocol/heartbeat.js";

/** Texts of 1..6 blocks sharing a 2-block system prompt. */
const system = "S".repeat(BLOCK_CHARS * 2);
const conv = (c: string, blocks: number) => canonicalText({ prompt: system + c.repeat(BLOCK_CHARS * (blocks - 2)) });
const keys = (text: string) => blockKeyList(text);

const snap = (epoch: string, seq: number, entries: [number, string][]): HeartbeatCache => ({
  epoch, seq, block_chars: BLOCK_CHARS, snapshot: entries.map(([id, text]) => ({ id, blocks: keys(text) })),
});
const events = (epoch: string, since: number, evs: Omit<CacheEvent, "seq">[]): HeartbeatCache => ({
  epoch, seq: since + evs.length, block_chars: BLOCK_CHARS, since, events: evs.map((e, i) => ({ ...e, seq: since + i + 1 })),
});
const matchOf = (ix: PrefixIndex, text: string) => Object.fromEntries([...ix.match(text).matched].sort());

describe("the prefix index", () => {
  it("follows scripted add and evict events and matches by the longest held prefix", () => {
    const ix = new PrefixIndex(10_000);
    const a5 = conv("a", 5); // the first prompt blocks
    assert.deepEqual(ix.apply("w1", snap("e1", 0, [])), { epoch: "e1", seq: 0 });
    assert.deepEqual(ix.apply("w2", snap("e2", 0, [])), { epoch: "e2", seq: 0 });
    assert.deepEqual(ix.apply("w1", events("e1", 0, [{ op: "add", id: 1, blocks: keys(a5) }])), { epoch: "e1", seq: 1 });
    assert.deepEqual(ix.apply("w2", events("e2", 0, [{ op: "add", id: 7, blocks: keys(conv("b", 4)) }])), { epoch: "e2", seq: 1 });

    const next = conv("a", 6); // turn 2 of conversation a
    assert.equal(ix.match(next).blocks, 6);
    assert.deepEqual(matchOf(ix, next), { w1: 5, w2: 2 });
    assert.deepEqual(matchOf(ix, conv("c", 3)), { w1: 2, w2: 2 }, "the shared system prompt");
    assert.deepEqual(matchOf(ix, canonicalText({ prompt: "unrelated".repeat(30) })), {});
    assert.deepEqual(ix.match("short").blocks, 0);

    // w1's entry is evicted and a longer one added in one beat.
    assert.deepEqual(ix.apply("w1", events("e1", 1, [{ op: "evict", id: 1 }, { op: "add", id: 2, blocks: keys(next) }])), { epoch: "e1", seq: 3 });
    assert.deepEqual(matchOf(ix, next), { w1: 6, w2: 2 });
    assert.deepEqual([...ix.entriesOf("w1").keys()], [2]);
    assert.deepEqual(ix.snapshot(), { workers: 2, entries: 2, block_refs: 10, keys: 8, max_block_refs: 10_000 });
  });

  it("counts a key once per entry, so a shared prefix stays while any entry holds it", () => {
    const ix = new PrefixIndex(10_000);
    ix.apply("w1", snap("e", 2, [[1, conv("a", 3)], [2, conv("b", 3)]]));
    assert.deepEqual(matchOf(ix, conv("z", 3)), { w1: 2 });
    ix.apply("w1", events("e", 2, [{ op: "evict", id: 1 }]));
    assert.deepEqual(matchOf(ix, conv("z", 3)), { w1: 2 });
    ix.apply("w1", events("e", 3, [{ op: "evict", id: 2 }]));
    assert.deepEqual(matchOf(ix, conv("z", 3)), {});
    assert.deepEqual(ix.snapshot().keys, 0);
  });

  it("skips events it applied already (a lost ack) and asks for a snapshot after a gap, an unknown epoch or no state", () => {
    const ix = new PrefixIndex(10_000);
    assert.equal(ix.apply("w1", events("e", 0, [{ op: "add", id: 1, blocks: keys(conv("a", 3)) }])), null, "no state yet");
    ix.apply("w1", snap("e", 1, [[1, conv("a", 3)]]));
    // The beat that carried event 2 arrived but its answer was lost: the worker sends 2 and 3.
    ix.apply("w1", events("e", 1, [{ op: "add", id: 2, blocks: keys(conv("b", 3)) }]));
    assert.deepEqual(ix.apply("w1", events("e", 1, [{ op: "add", id: 2, blocks: keys(conv("b", 3)) }, { op: "evict", id: 1 }])), { epoch: "e", seq: 3 });
    assert.deepEqual([...ix.entriesOf("w1").keys()], [2]);
    assert.equal(ix.apply("w1", events("e", 5, [{ op: "evict", id: 2 }])), null, "a gap: events 4 and 5 are missing");
    assert.equal(ix.entriesOf("w1").size, 0, "a worker's stale view is dropped at once");
    ix.apply("w1", snap("e", 6, [[3, conv("c", 3)]]));
    assert.equal(ix.apply("w1", { epoch: "restarted", seq: 0, block_chars: BLOCK_CHARS }), null);
    assert.equal(ix.entriesOf("w1").size, 0);
    ix.apply("w1", snap("e", 6, [[3, conv("c", 3)]]));
    assert.equal(ix.apply("w1", { epoch: "e", seq: 7, block_chars: BLOCK_CHARS }), null, "a seq it never saw");
  });

  it("applies a stream's cache notice ahead of the heartbeat that carries it, without losing order", () => {
    const ix = new PrefixIndex(10_000);
    ix.apply("w1", snap("e", 4, []));
    const add = (seq: number, id: number, text: string) => ({ epoch: "e", event: { seq, op: "add" as const, id, blocks: keys(text) } });
    // The next event: applied in order.
    ix.applyNotice("w1", add(5, 1, conv("a", 3)));
    assert.deepEqual(matchOf(ix, conv("a", 3)), { w1: 3 });
    // A heartbeat built before it arrives late: nothing lost, no snapshot asked for.
    assert.deepEqual(ix.apply("w1", { epoch: "e", seq: 4, block_chars: BLOCK_CHARS }), { epoch: "e", seq: 5 });
    // Event 7 before event 6: applied alone; the heartbeat with 6 and 7 then completes the order.
    ix.applyNotice("w1", add(7, 3, conv("b", 3)));
    assert.deepEqual(matchOf(ix, conv("b", 3)), { w1: 3 });
    assert.deepEqual(ix.apply("w1", events("e", 5, [{ op: "evict", id: 1 }, { op: "add", id: 3, blocks: keys(conv("b", 3)) }])), { epoch: "e", seq: 7 });
    assert.deepEqual([...ix.entriesOf("w1").keys()], [3]);
    // Old or foreign notices change nothing.
    ix.applyNotice("w1", add(6, 9, conv("c", 3)));
    ix.applyNotice("w1", { ...add(8, 9, conv("c", 3)), epoch: "other" });
    ix.applyNotice("w2", add(1, 9, conv("c", 3)));
    assert.deepEqual(matchOf(ix, conv("c", 3)), { w1: 2 });
  });

  it("forgets a worker that leaves", () => {
    const ix = new PrefixIndex(10_000);
    ix.apply("w1", snap("e", 1, [[1, conv("a", 3)]]));
    ix.apply("w2", snap("f", 1, [[1, conv("a", 3)]]));
    ix.removeWorker("w1");
    assert.deepEqual(matchOf(ix, conv("a", 3)), { w2: 3 });
    assert.equal(ix.snapshot().workers, 1);
  });

  it("stays within its bound, dropping the entries indexed longest ago", () => {
    const ix = new PrefixIndex(8);
    ix.apply("w1", snap("e", 0, []));
    ix.apply("w1", events("e", 0, [{ op: "add", id: 1, blocks: keys(conv("a", 3)) }]));
    ix.apply("w2", snap("f", 1, [[1, conv("b", 4)]]));
    assert.equal(ix.snapshot().block_refs, 7);
    ix.apply("w1", events("e", 1, [{ op: "add", id: 2, blocks: keys(conv("c", 3)) }]));
    assert.deepEqual(ix.snapshot(), { workers: 2, entries: 2, block_refs: 7, keys: 5, max_block_refs: 8 });
    assert.deepEqual([...ix.entriesOf("w1").keys()], [2], "w1's first entry went first");
    // An entry larger than the whole bound keeps its leading blocks only.
    ix.apply("w3", snap("g", 1, [[1, conv("d", 12)]]));
    assert.deepEqual(ix.snapshot(), { workers: 3, entries: 1, block_refs: 8, keys: 8, max_block_refs: 8 }, "everything older made room");
    assert.deepEqual(matchOf(ix, conv("d", 12)), { w3: 8 });
    // An evict event for an entry the bound dropped is harmless.
    assert.deepEqual(ix.apply("w1", events("e", 2, [{ op: "evict", id: 1 }])), { epoch: "e", seq: 3 });
  });

  it("ignores caches keyed with another block size, acknowledging them so they are not resent", () => {
    const ix = new PrefixIndex(100);
    assert.deepEqual(ix.apply("w1", { epoch: "e", seq: 3, block_chars: 32, snapshot: [{ id: 1, blocks: keys(conv("a", 3)) }] }), { epoch: "e", seq: 3 });
    assert.equal(ix.snapshot().entries, 0);
  });
});

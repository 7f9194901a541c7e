import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CacheEventLog, MAX_LOG_EVENTS } from "../../src/worker/cache-event-log.js";
import { KeptSequences } from "../../src/worker/kept-sequences.js";
import { BLOCK_CHARS } from "../../src/protocol/prefix-blocks.js";
import { parseCache, parseCacheNotice } from "../../src/protocol/heartbeat.js";

const key = (i: number) => i.toString(16).padStart(16, "0");

describe("the worker's cache event log", () => {
  function setup() {
    const log = new CacheEventLog();
    let nudges = 0;
    log.onEvent = () => nudges++;
    const kept = new KeptSequences(log);
    return { log, kept, nudges: () => nudges };
  }

  it("numbers add and evict events and skips sequences shorter than a block", () => {
    const { log, kept, nudges } = setup();
    kept.keep("a", 0, 10, 1, [key(1), key(2)]);
    kept.keep(undefined, 1, 2, 2, []);
    kept.remove(kept.atSlot(1)!); // never published: no event
    kept.remove(kept.get("a")!);
    assert.equal(log.lastSeq, 2);
    assert.equal(nudges(), 2);
    assert.equal(log.entries().size, 0);
  });

  it("sends a new coordinator a snapshot, then only what changed since its ack", () => {
    const { log, kept } = setup();
    kept.keep("a", 0, 10, 1, [key(1), key(2)]);
    kept.keep("b", 1, 10, 2, [key(3)]);
    const first = log.sectionFor(undefined);
    assert.deepEqual(first, { epoch: log.epoch, seq: 2, block_chars: BLOCK_CHARS, snapshot: [{ id: 2, blocks: [key(3)] }, { id: 1, blocks: [key(1), key(2)] }] });
    assert.deepEqual(log.sectionFor({ epoch: log.epoch, seq: 2 }), { epoch: log.epoch, seq: 2, block_chars: BLOCK_CHARS });
    kept.remove(kept.get("a")!);
    kept.keep("c", 0, 5, 3, [key(4)]);
    assert.deepEqual(log.sectionFor({ epoch: log.epoch, seq: 2 }), {
      epoch: log.epoch, seq: 4, block_chars: BLOCK_CHARS, since: 2,
      events: [{ seq: 3, op: "evict", id: 1 }, { seq: 4, op: "add", id: 3, blocks: [key(4)] }],
    });
    // What it sends parses back as it was.
    assert.deepEqual(parseCache(JSON.parse(JSON.stringify(log.sectionFor({ epoch: log.epoch, seq: 2 })))), log.sectionFor({ epoch: log.epoch, seq: 2 }));
  });

  it("gives the add event of a live entry as the notice a decode stream carries", () => {
    const { log, kept } = setup();
    kept.keep("a", 0, 10, 1, [key(1)]);
    kept.keep("b", 1, 10, 2, [key(2)]);
    assert.deepEqual(log.noticeOf(kept.get("a")!.id), { epoch: log.epoch, event: { seq: 1, op: "add", id: 1, blocks: [key(1)] } });
    assert.deepEqual(parseCacheNotice(JSON.parse(JSON.stringify(log.noticeOf(2)))), log.noticeOf(2));
    kept.remove(kept.get("a")!);
    assert.equal(log.noticeOf(1), undefined, "no notice for an entry already gone");
    assert.equal(parseCacheNotice({ epoch: "e", event: { seq: 1, op: "evict", id: 1 } }), undefined, "only adds travel with a stream");
    assert.equal(parseCacheNotice({ epoch: "e", event: { seq: 1, op: "add", id: 1, blocks: ["nothex"] } }), undefined);
  });

  it("falls back to a snapshot for another epoch, an ack from the future, or one older than the log", () => {
    const { log, kept } = setup();
    kept.keep("a", 0, 10, 1, [key(1)]);
    assert.ok(log.sectionFor({ epoch: "other", seq: 1 }).snapshot);
    assert.ok(log.sectionFor({ epoch: log.epoch, seq: 9 }).snapshot);
    for (let i = 0; i < MAX_LOG_EVENTS; i++) kept.keep("a", 0, 10, 2 + i, [key(i)]);
    const s = log.sectionFor({ epoch: log.epoch, seq: 1 });
    assert.ok(s.snapshot, "the events after seq 1 left the log");
    assert.deepEqual(s.snapshot, [{ id: kept.get("a")!.id, blocks: [key(MAX_LOG_EVENTS - 1)] }]);
    assert.ok(log.sectionFor({ epoch: log.epoch, seq: log.lastSeq - 10 }).events, "recent acks still get events");
  });
});

describe("heartbeat cache sections from the wire", () => {
  const base = { epoch: "e", seq: 2, block_chars: 64 };
  const bad: [string, unknown][] = [
    ["not an object", 5],
    ["no epoch", { seq: 1, block_chars: 64 }],
    ["a bad key", { ...base, snapshot: [{ id: 1, blocks: ["xyz"] }] }],
    ["events that do not reach seq", { ...base, since: 0, events: [{ seq: 1, op: "add", id: 1, blocks: [] }] }],
    ["events out of order", { ...base, since: 0, events: [{ seq: 2, op: "add", id: 1, blocks: [] }, { seq: 1, op: "evict", id: 1 }] }],
    ["an unknown op", { ...base, since: 1, events: [{ seq: 2, op: "drop", id: 1 }] }],
    ["a negative id", { ...base, snapshot: [{ id: -1, blocks: [] }] }],
  ];
  for (const [name, v] of bad) it(`refuses ${name}`, () => assert.throws(() => parseCache(v), (e: Error & { code?: string }) => e.code === "invalid_field"));
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PrefixIndex } from "../../src/coordinator/fleet/prefix-index.js";
import { prefixMatch } from "../../src/coordinator/scheduler/scorers.js";
import type { Candidate, RouteRequest } from "../../src/coordinator/scheduler/types.js";
import { BLOCK_CHARS, blockKeyList, canonicalText } from "../../src/protocol/prefix-blocks.js";
import type { CacheEvent, HeartbeatCache } from "../../src/protocol/heartbeat.js";
import { parseCache } from "../../src/protocol/heartbeat.js";
import { CacheEventLog } from "../../src/worker/cache-event-log.js";

const system = "S".repeat(BLOCK_CHARS * 2);
const conv = (c: string, blocks: number) => canonicalText({ prompt: system + c.repeat(BLOCK_CHARS * (blocks - 2)) });
const keys = (text: string) => blockKeyList(text);
const events = (epoch: string, since: number, evs: Omit<CacheEvent, "seq">[]): HeartbeatCache => ({
  epoch, seq: since + evs.length, block_chars: BLOCK_CHARS, since, events: evs.map((e, i) => ({ ...e, seq: since + i + 1 })),
});
const snap = (epoch: string): HeartbeatCache => ({ epoch, seq: 0, block_chars: BLOCK_CHARS, snapshot: [] });

describe("KV tier holdings in routing", () => {
  it("the worker publishes a tier entry with its tier, moves it between tiers and evicts it", () => {
    const log = new CacheEventLog();
    log.added("conv-a", "host", 100, ["0123456789abcdef", "fedcba9876543210"]);
    log.removed("conv-a", "host");
    log.added("conv-a", "disk", 100, ["0123456789abcdef", "fedcba9876543210"]);
    const section = log.sectionFor({ epoch: log.epoch, seq: 0 });
    const parsed = parseCache(JSON.parse(JSON.stringify(section)));
    assert.deepEqual(parsed.events?.map((e) => [e.op, e.tier ?? null]), [["add", "host"], ["evict", null], ["add", "disk"]]);
    assert.deepEqual(log.sectionFor(undefined).snapshot?.map((e) => e.tier), ["disk"]);
    log.removed("conv-a", "disk");
    assert.deepEqual(log.sectionFor(undefined).snapshot, []);
  });

  it("the index matches tier entries apart from slot entries, per tier", () => {
    const ix = new PrefixIndex(10_000);
    ix.apply("w1", snap("e1"));
    ix.apply("w2", snap("e2"));
    const a5 = conv("a", 5);
    ix.apply("w1", events("e1", 0, [{ op: "add", id: 2 ** 40, blocks: keys(a5), tier: "disk" }]));
    ix.apply("w2", events("e2", 0, [{ op: "add", id: 3, blocks: keys(conv("b", 3)) }]));
    const m = ix.match(conv("a", 6));
    assert.deepEqual(Object.fromEntries(m.matched), { w2: 2 });
    assert.deepEqual(Object.fromEntries(m.tiers ?? []), { w1: { blocks: 5, tier: "disk" } });
    ix.apply("w1", events("e1", 1, [{ op: "evict", id: 2 ** 40 }]));
    assert.equal(ix.match(conv("a", 6)).tiers, undefined);
  });

  it("the prefix scorer counts a tier hit at the worker's measured tier weight, below a slot hit", () => {
    const base = { url: "", model: "m", fresh: true, healthy: true, draining: false, sessions: 0, maxSessions: 10, kvBytes: 0, maxKvBytes: 1, maxSessionKvBytes: 1, kvBytesPerToken: 1, contextSize: 1, waiting: 0, slotsTotal: 4 };
    const slot: Candidate = { ...base, id: "slot" };
    const tiered: Candidate = { ...base, id: "tier", kvTierWeight: { host: 0.9, disk: 0.5 } };
    const r = { prefix: { blocks: 10, matched: new Map([["slot", 8]]), tiers: new Map([["tier", { blocks: 8, tier: "host" as const }]]) } } as unknown as RouteRequest;
    assert.equal(prefixMatch.score(slot, r), 0.8);
    assert.ok(Math.abs(prefixMatch.score(tiered, r) - 0.72) < 1e-12);
    const disk = { prefix: { blocks: 10, matched: new Map(), tiers: new Map([["tier", { blocks: 8, tier: "disk" as const }]]) } } as unknown as RouteRequest;
    assert.equal(prefixMatch.score(tiered, disk), 0.4);
    // Without published weights (no tiers on that worker), a tier entry counts nothing.
    assert.equal(prefixMatch.score({ ...tiered, kvTierWeight: undefined }, disk), 0);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { floorSentence, floorVerdict } from "../../src/bench/perf/floor-verdict.js";
import { relayGoals, type LevelStats, type RelayStats } from "../../src/bench/perf/relay-goals.js";

const relay = (o: Partial<RelayStats>): RelayStats => ({
  idleRssMb: 20, rssPerStream: 0, heapPerStream: NaN, tps: 10_000, cpuUs: 10, rssMb: 40, ttftP50: 100, ttftP99: 200, notOk: 0, ...o,
});

describe("what the Node floor says of a goal", () => {
  const cases: [boolean, boolean, string][] = [
    [true, true, "met"],
    [true, false, "met"],
    [false, true, "reachable"],
    [false, false, "out of reach"],
  ];
  for (const [coordinator, floor, expected] of cases) {
    it(`coordinator ${coordinator ? "meets" : "misses"}, floor ${floor ? "meets" : "misses"}: ${expected}`, () => assert.equal(floorVerdict(coordinator, floor), expected));
  }

  it("an out-of-reach sentence names the floor's value first", () =>
    assert.equal(
      floorSentence("bulk CPU ≤ 2 µs per token", "4.94 µs", "2.50 µs", "out of reach"),
      "bulk CPU ≤ 2 µs per token: out of reach for Node on this machine: the Node floor, which only pipes bytes, is already at 2.50 µs (coordinator 4.94 µs); the next-best design forwards bytes as unparsed as the floor does, or takes the data path out of Node.",
    ));
});

describe("the relay goals judged for the coordinator and the Node floor", () => {
  const paced = (streams: number, c: Partial<RelayStats>, n: Partial<RelayStats>, f: Partial<RelayStats>): LevelStats => ({
    level: { regime: "paced", streams, itlMs: 50, tokens: 100 }, c: relay(c), n: relay(n), f: relay(f),
  });
  const bulk = (c: Partial<RelayStats>, f: Partial<RelayStats>): LevelStats => ({
    level: { regime: "bulk", streams: 1000, itlMs: 0, tokens: 400 }, c: relay(c), n: relay({ cpuUs: 1, tps: 164_000 }), f: relay(f),
  });
  const g = relayGoals([
    paced(100, { cpuUs: 57 }, { cpuUs: 17 }, { cpuUs: 20 }),
    paced(1000, { cpuUs: 40, rssMb: 207 }, { cpuUs: 14 }, { cpuUs: 30, rssMb: 60 }),
    bulk({ cpuUs: 4.9, tps: 144_000, rssMb: 262 }, { cpuUs: 2.5, tps: 190_000, rssMb: 70 }),
  ]);
  const verdictOf = (goal: string) => g.verdicts.find((v) => v.goal === goal)?.verdict;

  it("judges the floor on its own worst level: paced CPU is out of reach when the floor is over 1.5× nginx anywhere", () =>
    assert.equal(verdictOf("paced CPU per token ≤ 1.5× nginx"), "out of reach"));
  it("bulk CPU above 2 µs for the floor too is out of reach", () => assert.equal(verdictOf("bulk CPU ≤ 2 µs per token"), "out of reach"));
  it("bulk throughput the floor cannot reach either is out of reach", () => assert.equal(verdictOf("bulk ≥ 200,000 tokens/s"), "out of reach"));
  it("RSS the floor stays under is reachable", () => assert.equal(verdictOf("RSS ≤ 150 MB at 1,000 streams"), "reachable"));
  it("TTFT the coordinator meets is met", () => assert.equal(verdictOf("TTFT p50 under load ≤ 2× nginx"), "met"));
  it("writes one sentence per judged goal and one table row per goal", () => {
    assert.equal(g.notes.length, 5);
    assert.equal(g.table.split("\n").length, 2 + 5);
  });
  it("says so when nginx misses an out-of-reach goal too", () => {
    assert.match(g.notes.find((n) => n.startsWith("bulk ≥ 200,000 tokens/s"))!, /nginx misses it too \(164,000 tok\/s at bulk 1000\): this machine bounds it\.$/);
    assert.doesNotMatch(g.notes.find((n) => n.startsWith("bulk CPU"))!, /nginx misses it too/);
  });
  it("names the floor's worst level where it differs from the coordinator's", () =>
    assert.match(g.table, /\| paced CPU per token ≤ 1\.5× nginx \(paced 100\) \| 57\.0 µs = 3\.35× \| 17\.0 µs = 1\.00× \| 30\.0 µs = 2\.14× \(paced 1000\) \| ❌ \| ❌ out of reach \|/));
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { commonPrefix, slotRank, type SlotView } from "../../src/worker/slot-rank.js";

const seq = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe("slot ranking for a new session", () => {
  it("measures common prefixes exactly", () => {
    const table: [number[], number[], number][] = [
      [[], [1, 2], 0],
      [[1, 2, 3], [1, 2, 3], 3],
      [[1, 2, 3], [1, 2], 2],
      [[1, 9, 3], [1, 2, 3], 1],
      [[7], [1], 0],
    ];
    for (const [a, b, n] of table) assert.equal(commonPrefix(a, b), n, `${a} vs ${b}`);
  });

  // The prompt: 100 tokens 0..99.
  const prompt = seq(100);
  const view = (held: number[], kept: boolean, recency = 0): SlotView => ({ held, kept, recency });
  const slots: Record<string, SlotView> = {
    empty: view([], false),
    staleUnkept: view(seq(60), false), // evicted bookkeeping: 60 reusable tokens, nobody's cache
    ownLastTurn: view(seq(80), true, 3), // exactly a prefix of the prompt: saves 80, loses nothing
    sharedSystem: view([...seq(30), 500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511, 512, 513, 514, 515, 516, 517, 518, 519], true, 0), // saves 30, loses 20
    otherConversation: view([...seq(10), ...seq(200, 1000)], true, 0), // saves 10, loses 200
    otherNewer: view([...seq(10), ...seq(200, 1000)], true, 1),
  };
  const order = (names: string[]) => [...names].sort((a, b) => slotRank(slots[b]!, prompt) - slotRank(slots[a]!, prompt));

  const table: [string, string[], string[]][] = [
    ["the conversation's own last turn beats everything", ["empty", "ownLastTurn", "staleUnkept", "sharedSystem"], ["ownLastTurn", "staleUnkept", "sharedSystem", "empty"]],
    ["stale tokens nobody keeps are reused for free", ["empty", "staleUnkept"], ["staleUnkept", "empty"]],
    ["a kept slot is taken when it saves more than it loses", ["empty", "sharedSystem"], ["sharedSystem", "empty"]],
    ["an empty slot beats evicting a conversation that shares a little", ["otherConversation", "empty"], ["empty", "otherConversation"]],
    ["among lossy slots the least recently used goes first", ["otherNewer", "otherConversation"], ["otherConversation", "otherNewer"]],
  ];
  for (const [name, input, expected] of table) it(name, () => assert.deepEqual(order(input), expected));
});

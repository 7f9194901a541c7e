import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BLOCK_CHARS, BLOCK_KEY_RE, MAX_BLOCKS_PER_SEQUENCE, blockCount, blockKeyList, canonicalText, canonicalWithOutput } from "../../src/protocol/prefix-blocks.js";
import type { ChatMessage } from "../../src/protocol/chat.js";

const story = "Once upon a time there was a little cat who liked to play in the sun. ".repeat(8);

describe("prefix block keys", () => {
  it("cut the canonical text into complete blocks of BLOCK_CHARS characters", () => {
    const table: [number, number][] = [[0, 0], [BLOCK_CHARS - 1, 0], [BLOCK_CHARS, 1], [BLOCK_CHARS * 3 + 5, 3]];
    for (const [chars, blocks] of table) {
      assert.equal(blockCount("x".repeat(chars)), blocks);
      assert.equal(blockKeyList("x".repeat(chars)).length, blocks);
    }
    assert.equal(blockCount("x".repeat(BLOCK_CHARS * (MAX_BLOCKS_PER_SEQUENCE + 3))), MAX_BLOCKS_PER_SEQUENCE);
  });

  it("are chained: a text's keys start with the keys of each of its prefixes, and differ after a change", () => {
    const keys = blockKeyList(story);
    assert.ok(keys.every((k) => BLOCK_KEY_RE.test(k)));
    assert.equal(new Set(keys).size, keys.length, "repeated content still gets distinct keys (the chain differs)");
    assert.deepEqual(blockKeyList(story.slice(0, BLOCK_CHARS * 3 + 10)), keys.slice(0, 3));
    const changed = story.slice(0, BLOCK_CHARS * 2 + 7) + "X" + story.slice(BLOCK_CHARS * 2 + 8);
    const k2 = blockKeyList(changed);
    assert.deepEqual(k2.slice(0, 2), keys.slice(0, 2));
    for (let i = 2; i < keys.length; i++) assert.notEqual(k2[i], keys[i], `block ${i} after the change`);
  });

  it("are the same on every process: a fixed text has fixed keys", () => {
    assert.deepEqual(blockKeyList("a".repeat(BLOCK_CHARS * 2)), blockKeyList("a".repeat(BLOCK_CHARS * 2 + 3)));
    // Workers and coordinators of one release must agree; this pins the function.
    assert.deepEqual(blockKeyList("0123456789".repeat(13)), ["455badc44e793885", "87cc49f703ae36c6"]);
  });

  it("make a conversation's kept sequence a prefix of its next turn, and keep text and chat apart", () => {
    const turn1: ChatMessage[] = [{ role: "system", content: story }, { role: "user", content: "Tell me about a dog." }];
    const answer = " The dog ran to the park and played with a big red ball all day long until the sun went down.";
    const kept = canonicalWithOutput({ messages: turn1 }, answer);
    const turn2: ChatMessage[] = [...turn1, { role: "assistant", content: answer }, { role: "user", content: "And then?" }];
    const next = canonicalText({ messages: turn2 });
    assert.ok(next.startsWith(kept));
    const keptKeys = blockKeyList(kept);
    assert.deepEqual(blockKeyList(next).slice(0, keptKeys.length), keptKeys);
    // The same words as a text prompt are another key space.
    assert.notEqual(blockKeyList(canonicalText({ prompt: story }))[0], blockKeyList(canonicalText({ messages: [{ role: "user", content: story }] }))[0]);
    const textKept = canonicalWithOutput({ prompt: story }, answer);
    assert.ok(canonicalText({ prompt: story + answer + " More." }).startsWith(textKept));
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Logger } from "../../src/common/logger.js";
import { DecodeReader } from "../../src/coordinator/stream/decode-reader.js";
import { FlushBatch } from "../../src/coordinator/stream/flush-batch.js";

/** A logger that keeps the messages of its warnings. */
function warnings(): { log: Logger; seen: string[] } {
  const seen: string[] = [];
  const log = { warn: (_fields: unknown, msg: string) => void seen.push(msg), debug: () => undefined } as unknown as Logger;
  return { log, seen };
}

const token = (text: string, seq: number) => `data: {"token":${JSON.stringify(text)},"seq":${seq}}\n\n`;

describe("the decode reader", () => {
  it("keeps a generate stream's prefill acknowledgement aside and returns the tokens after it", () => {
    const { log, seen } = warnings();
    const r = new DecodeReader(log);
    const ack = { status: "ok", prompt_tokens: 2, kv_cache_bytes: 1280, cached_tokens: 0, worker_id: "w1", max_tokens: 1 };
    r.push(`data: ${JSON.stringify({ prefill: ack })}\n\n` + token("a", 0));
    assert.equal(r.next(), "a");
    assert.deepEqual(r.prefillAck, ack);
    assert.deepEqual(seen, [], "no sequence gap: the acknowledgement takes no seq");
  });

  it("hands a token's logprob entries with it, and none with a token that carries none", () => {
    const { log, seen } = warnings();
    const r = new DecodeReader(log);
    const entry = { token: "a", logprob: -0.25, bytes: [97], top_logprobs: [{ token: "a", logprob: -0.25, bytes: [97] }] };
    r.push(`data: ${JSON.stringify({ token: "a", seq: 0, logprobs: [entry] })}\n\n` + token("b", 1));
    assert.equal(r.next(), "a");
    assert.deepEqual(r.tokenLogprobs, [entry]);
    assert.equal(r.next(), "b");
    assert.equal(r.tokenLogprobs, undefined);
    assert.deepEqual(seen, []);
  });

  it("reads tokens as text, the end as an event, across chunk boundaries inside a character", () => {
    const { log, seen } = warnings();
    const r = new DecodeReader(log);
    const wire = Buffer.from(token("ä", 0) + token('"q"', 1) + 'data: {"token":"","seq":2,"finished":true,"reason":"length","completion_tokens":2}\n\n');
    const out: unknown[] = [];
    for (let i = 0; i < wire.length; i += 3) {
      r.push(wire.subarray(i, i + 3));
      for (let e = r.next(); e !== undefined; e = r.next()) out.push(e);
    }
    assert.deepEqual(out, ["ä", '"q"', { kind: "end", reason: "length", promptTokens: undefined, completionTokens: 2, text: "" }]);
    assert.deepEqual(seen, []);
  });

  it("two streams read interleaved keep their own numbering: no false sequence gap", () => {
    const { log, seen } = warnings();
    const a = new DecodeReader(log);
    const c = new DecodeReader(log);
    for (let i = 0; i < 5; i++) {
      c.push(token("c", i));
      a.restart();
      a.push(token("a", 0));
      assert.equal(c.next(), "c");
      assert.equal(a.next(), "a");
    }
    assert.deepEqual(seen, [], "a restarted reader and an interleaved one log no gap");
    c.push(token("c", 7));
    assert.equal(c.next(), "c");
    assert.deepEqual(seen, ["stream.sequence_gap"], "a real gap is still seen");
  });

  it("skips and logs an event that is not a worker's", () => {
    const { log, seen } = warnings();
    const r = new DecodeReader(log);
    r.push("data: not json\n\n" + token("x", 0));
    assert.equal(r.next(), "x");
    assert.deepEqual(seen, ["stream.bad_event"]);
  });
});

describe("the flush batch", () => {
  it("runs every flush scheduled during one turn in one later turn, in order", async () => {
    const batch = new FlushBatch();
    const ran: number[] = [];
    batch.schedule(() => ran.push(1));
    batch.schedule(() => ran.push(2));
    assert.deepEqual(ran, []);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(ran, [1, 2]);
  });
});

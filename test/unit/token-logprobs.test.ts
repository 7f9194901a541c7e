import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseDecodeEvent } from "../../src/protocol/decode-event.js";
import { LOGPROB_FLOOR, completionLogprobsOf, readLogprobContent, wireLogprob } from "../../src/protocol/token-logprobs.js";
import { logprobContentOf } from "../../src/worker/logprob-entry.js";

describe("token logprobs on the wire", () => {
  it("an engine's entry becomes OpenAI's chat entry: bytes exact, the token their UTF-8 text", () => {
    const e = logprobContentOf({
      id: 7, logprob: -0.5, bytes: Uint8Array.from([0xc3]),
      top: [{ id: 7, logprob: -0.5, bytes: Uint8Array.from([0xc3]) }, { id: 9, logprob: -Infinity, bytes: Uint8Array.from([0x61]) }],
    });
    assert.deepEqual(e, {
      token: "\ufffd", logprob: -0.5, bytes: [0xc3],
      top_logprobs: [{ token: "\ufffd", logprob: -0.5, bytes: [0xc3] }, { token: "a", logprob: LOGPROB_FLOOR, bytes: [0x61] }],
    });
    assert.equal(wireLogprob(-1.5), -1.5);
    assert.equal(wireLogprob(Number.NEGATIVE_INFINITY), LOGPROB_FLOOR);
  });

  it("the legacy shape keeps the likelier of two tokens with the same text", () => {
    const top = [{ token: "\ufffd", logprob: -1, bytes: [0xc3] }, { token: "\ufffd", logprob: -2, bytes: [0xc4] }];
    const c = completionLogprobsOf([{ token: "\ufffd", logprob: -1, bytes: [0xc3], top_logprobs: top }], 5);
    assert.deepEqual(c, { tokens: ["\ufffd"], token_logprobs: [-1], top_logprobs: [{ "\ufffd": -1 }], text_offset: [5] });
  });

  it("a worker's token event carries its logprobs; malformed ones are dropped, the token kept", () => {
    const entry = { token: "a", logprob: -1, bytes: [97], top_logprobs: [] };
    assert.deepEqual(parseDecodeEvent(JSON.stringify({ token: "a", seq: 0, logprobs: [entry] })), { kind: "token", text: "a", seq: 0, logprobs: [entry] });
    assert.deepEqual(parseDecodeEvent(JSON.stringify({ token: "a", seq: 0, logprobs: [{ token: 1 }] })), { kind: "token", text: "a", seq: 0 });
    assert.equal(readLogprobContent("x"), undefined);
    assert.equal(readLogprobContent([{ token: "a", logprob: -1, bytes: [97] }]), undefined, "top_logprobs is required");
  });
});

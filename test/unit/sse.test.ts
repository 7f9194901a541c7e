import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SseParser, sseComment, sseData } from "../../src/protocol/sse.js";
import { seedEndEvent, seedErrorEvent, seedTokenEvents } from "../../src/protocol/seed-stream.js";

describe("SSE framing", () => {
  it("frames data and comments with exact bytes", () => {
    assert.equal(sseData('{"a":1}'), 'data: {"a":1}\n\n');
    assert.equal(sseComment("queued 3"), ": queued 3\n\n");
    assert.equal(sseComment("a\nb\r\nc"), ": a b c\n\n");
  });

  it("frames the seed stream exactly", () => {
    assert.equal(seedTokenEvents(["Hi", ' "x"\n']), 'data: {"token":"Hi","finished":false}\n\ndata: {"token":" \\"x\\"\\n","finished":false}\n\n');
    assert.equal(seedTokenEvents([]), "");
    assert.equal(seedEndEvent("length", 5, 7), 'data: {"token":"","finished":true,"reason":"length","prompt_tokens":5,"completion_tokens":7}\n\n');
    assert.equal(
      seedErrorEvent("worker_error", "boom"),
      'data: {"token":"","finished":true,"reason":"error","error":{"code":"worker_error","message":"boom"}}\n\n',
    );
  });
});

describe("SseParser", () => {
  const cases: { name: string; chunks: string[]; events: { event?: string; data: string }[]; pending?: number }[] = [
    { name: "one event in one chunk", chunks: ["data: x\n\n"], events: [{ data: "x" }] },
    { name: "an event split across chunks", chunks: ["da", "ta: {\"t\"", ":1}\n", "\n"], events: [{ data: '{"t":1}' }] },
    { name: "several events in one chunk", chunks: ["data: a\n\ndata: b\n\ndata: c"], events: [{ data: "a" }, { data: "b" }], pending: 7 },
    { name: "CRLF line endings", chunks: ["data: a\r\n\r\ndata: b\r\n", "\r\n"], events: [{ data: "a" }, { data: "b" }] },
    { name: "comments are skipped", chunks: [": ping\n\ndata: a\n\n"], events: [{ data: "a" }] },
    { name: "multi-line data joins with newlines", chunks: ["data: a\ndata: b\n\n"], events: [{ data: "a\nb" }] },
    { name: "event names are kept", chunks: ["event: error\ndata: x\n\n"], events: [{ event: "error", data: "x" }] },
    { name: "no space after the colon", chunks: ["data:x\n\n"], events: [{ data: "x" }] },
    { name: "a block without data is no event", chunks: ["id: 3\n\n"], events: [] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = new SseParser();
      const got = c.chunks.flatMap((ch) => p.push(ch));
      assert.deepEqual(got, c.events.map((e) => ({ event: e.event, data: e.data })));
      assert.equal(p.pendingLength, c.pending ?? 0);
    });
  }

  it("parses a stream fed one character at a time", () => {
    const text = 'data: {"token":"é","seq":0}\n\ndata: {"token":"x","seq":1}\n\n';
    const p = new SseParser();
    const got = [...text].flatMap((ch) => p.push(ch));
    assert.deepEqual(got.map((e) => JSON.parse(e.data).seq), [0, 1]);
  });
});

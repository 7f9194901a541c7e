import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, request, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { createLogger } from "../../src/common/logger.js";
import { relay, type RelayOptions, type RelayResult, type StreamFormat } from "../../src/coordinator/stream/relay.js";
import { fastTokenText } from "../../src/protocol/worker-token-event.js";
import { SseReader } from "../../src/protocol/sse.js";

const log = createLogger("test", "silent");
const format: StreamFormat = {
  tokens: (t, lp) => t.map((x) => `[${x}]`).join("") + (lp.length > 0 ? `{${lp.map((e) => `${e.token}:${e.logprob}`).join(",")}}` : ""),
  end: (f) => `<end ${f.reason} ${f.completionTokens}>`,
  error: (code) => `<error ${code}>`,
};

/** Relays `upstream` to a real loopback client; resolves with what the client read and the relay's result. */
async function run(upstream: PassThrough, feed: () => Promise<void> | void, opts: { bufferTokens?: number; writes?: number[]; relay?: Partial<RelayOptions> } = {}): Promise<{ body: string; result: RelayResult; paused: boolean }> {
  let result!: Promise<RelayResult>;
  let pausedSeen = false;
  const origPause = upstream.pause.bind(upstream);
  upstream.pause = () => {
    pausedSeen = true;
    return origPause();
  };
  const server = createServer((_req, res: ServerResponse) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    result = relay({
      upstream, res, format, bufferTokens: opts.bufferTokens ?? 64, writeTimeoutMs: 5000, log,
      abortUpstream: () => {}, onTokens: (n) => opts.writes?.push(n), ...opts.relay,
    });
    void feed();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const body = await new Promise<string>((resolve, reject) => {
    request({ port: (server.address() as AddressInfo).port, host: "127.0.0.1", method: "GET" }, (res) => {
      let s = "";
      res.setEncoding("utf8").on("data", (c: string) => (s += c)).on("end", () => resolve(s));
    }).on("error", reject).end();
  });
  server.close();
  return { body, result: await result, paused: pausedSeen };
}

const tokenEvent = (t: string, seq: number) => `data: ${JSON.stringify({ token: t, seq })}\n\n`;
const finalEvent = (n: number) => `data: {"token":"","seq":${n},"finished":true,"reason":"length","prompt_tokens":3,"completion_tokens":${n}}\n\n`;

describe("the relay", () => {
  it("reads worker token events with and without escapes", () => {
    const slot = { seq: 0 };
    assert.equal(fastTokenText('{"token":" cat","seq":12}', slot), " cat");
    assert.equal(slot.seq, 12);
    assert.equal(fastTokenText('{"token":"a\\"b","seq":1}', slot), undefined); // escaped: parsed in full
    assert.equal(fastTokenText('{"token":"","seq":3,"finished":true}', slot), undefined);
    assert.equal(fastTokenText('{"token":"x","seq":}', slot), undefined);
  });

  it("relays tokens split at every byte boundary, multi-byte characters included, then the end", async () => {
    const texts = ["Once", " upon", " ä", "\n\"q\"", " 🙂", " end"];
    const wire = Buffer.from(texts.map((t, i) => tokenEvent(t, i)).join("") + finalEvent(texts.length));
    const upstream = new PassThrough();
    const { body, result } = await run(upstream, async () => {
      for (let i = 0; i < wire.length; i += 7) {
        upstream.write(wire.subarray(i, i + 7));
        await new Promise((r) => setImmediate(r));
      }
      upstream.end();
    });
    assert.equal(result.termination, "complete");
    assert.equal(result.tokens, texts.length);
    assert.equal(body, texts.map((t) => `[${t}]`).join("") + `<end length ${texts.length}>`);
  });

  it("hands every token's logprobs to the format once, in order, a token with held-back text included", async () => {
    const entry = (token: string, logprob: number) => ({ token, logprob, bytes: [...Buffer.from(token)], top_logprobs: [] });
    const events = [["a", "a", -1], ["", "b", -2], ["bc", "c", -0.5]] as const;
    const wire = events.map(([text, token, lp], i) => `data: ${JSON.stringify({ token: text, seq: i, logprobs: [entry(token, lp)] })}\n\n`).join("") + finalEvent(3);
    const upstream = new PassThrough();
    const { body, result } = await run(upstream, () => {
      upstream.end(wire);
    });
    assert.equal(result.termination, "complete");
    const seen = [...body.matchAll(/\{([^}]*)\}/g)].flatMap((m) => m[1]!.split(","));
    assert.deepEqual(seen, ["a:-1", "b:-2", "c:-0.5"]);
    assert.equal(body.replace(/\{[^}]*\}/g, "").replace(/<end[^>]*>/, "").replaceAll("[", "").replaceAll("]", ""), "abc");
  });

  it("parses at most the buffer's worth per turn, pausing the worker, and loses nothing", async () => {
    const n = 1000;
    const writes: number[] = [];
    const upstream = new PassThrough();
    const { body, result, paused } = await run(upstream, () => {
      // One read holding a thousand events, as a fast worker gives a busy relay.
      upstream.end(Array.from({ length: n }, (_, i) => tokenEvent(`t${i}`, i)).join("") + finalEvent(n));
    }, { bufferTokens: 64, writes });
    assert.equal(result.termination, "complete");
    assert.equal(result.tokens, n);
    assert.ok(paused, "the worker stream was paused");
    assert.ok(writes.every((w) => w <= 64), `writes ${writes.join(",")}`);
    assert.equal(body, Array.from({ length: n }, (_, i) => `[t${i}]`).join("") + `<end length ${n}>`);
  });

  it("ends with a worker error when the worker stream ends without its final event", async () => {
    const upstream = new PassThrough();
    const { body, result } = await run(upstream, () => {
      upstream.end(tokenEvent("a", 0) + tokenEvent("b", 1));
    });
    assert.equal(result.termination, "worker_error");
    assert.equal(result.tokens, 2);
    assert.equal(body, "[a][b]<error worker_error>");
  });

  it("counts a stall from the worker's last data: steady tokens keep a stream alive past the stall timeout, silence then ends it", async () => {
    const upstream = new PassThrough();
    const n = 15;
    const { body, result } = await run(upstream, async () => {
      // 15 tokens 30 ms apart: 450 ms in all, longer than the 300 ms stall timeout, never silent that long.
      for (let i = 0; i < n; i++) {
        upstream.write(tokenEvent(`t${i}`, i));
        await new Promise((r) => setTimeout(r, 30));
      }
    }, { relay: { stallTimeoutMs: 300, firstTokenTimeoutMs: 300 } });
    assert.equal(result.termination, "worker_error");
    assert.equal(result.error?.code, "worker_stalled");
    assert.equal(result.tokens, n);
    assert.equal(body, Array.from({ length: n }, (_, i) => `[t${i}]`).join("") + "<error worker_stalled>");
  });

  it("passes the worker's error event on", async () => {
    const upstream = new PassThrough();
    const { body, result } = await run(upstream, () => {
      upstream.end(tokenEvent("a", 0) + 'data: {"token":"","seq":1,"finished":true,"reason":"error","error":{"code":"decode_failed","message":"x"}}\n\n');
    });
    assert.equal(result.termination, "worker_error");
    assert.deepEqual(result.error, { code: "decode_failed", message: "x" });
    assert.equal(body, "[a]<error decode_failed>");
  });
});

describe("the SSE reader", () => {
  it("hands out one event at a time and keeps a partial one", () => {
    const r = new SseReader();
    r.push("data: 1\n\n: keep-alive\n\ndata: 2\n\ndata: 3");
    assert.equal(r.nextData(), "1");
    assert.equal(r.hasEvent, true);
    assert.equal(r.nextData(), "2");
    assert.equal(r.hasEvent, false);
    assert.equal(r.nextData(), undefined);
    assert.equal(r.pendingLength, "data: 3".length);
    r.push("\n\nevent: e\ndata: a\ndata: b\n\n");
    assert.equal(r.nextData(), "3");
    assert.deepEqual(r.next(), { event: "e", data: "a\nb" });
    assert.equal(r.pendingLength, 0);
  });
});

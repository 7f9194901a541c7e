import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { PassThrough, Writable } from "node:stream";
import { createLogger } from "../../src/common/logger.js";
import { relay, type RelayResult } from "../../src/coordinator/stream/relay.js";
import { seedEndEvent, seedErrorEvent, seedTokenEvents } from "../../src/protocol/seed-stream.js";
import { SSE_HEADERS } from "../../src/protocol/sse.js";
import { waitFor } from "../helpers/http.js";

/**
 * The relay over real loopback sockets: the worker side is a stream we write SSE events into as
 * fast as the relay takes them; the client sends its request and then never reads.
 */
describe("relay toward a client that stops reading", () => {
  it("flags the client as slow once, keeps relaying between drains, then drops it at the write deadline and stops the worker stream", { timeout: 20_000 }, async () => {
    const lines: { msg: string; level: string }[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split("\n")) if (l !== "") lines.push(JSON.parse(l));
        cb();
      },
    });
    const log = createLogger("coordinator", "debug", sink);
    const upstream = new PassThrough();
    const hooks = { slow: 0, waits: [] as number[], aborted: 0, tokens: 0 };
    let relayed: Promise<RelayResult> | undefined;
    const server = createServer((_req, res) => {
      res.writeHead(200, SSE_HEADERS);
      relayed = relay({
        upstream, res, log, bufferTokens: 4, writeTimeoutMs: 300,
        format: { tokens: seedTokenEvents, end: (f) => seedEndEvent(f.reason, f.promptTokens, f.completionTokens), error: seedErrorEvent },
        abortUpstream: () => hooks.aborted++,
        onSlowClient: () => hooks.slow++,
        onWriteWait: (ms) => hooks.waits.push(ms),
        onTokens: (n) => (hooks.tokens += n),
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = connect((server.address() as AddressInfo).port, "127.0.0.1");
    client.on("error", () => {});
    // The request, then no reader: the kernel's buffers fill, then Node's, then the relay's.
    client.write("POST /coordinator/infer HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n");
    await waitFor(() => relayed !== undefined, "the relay to start", 5000, 5);
    const token = "x".repeat(4096);
    let done = false;
    void relayed!.then(() => (done = true));
    // Bounded: the deadline fires long before this many tokens (~256 MiB) could be written.
    for (let seq = 0; !done && seq < 65_536; seq++) {
      if (!upstream.write(`data: {"token":"${token}","seq":${seq}}\n\n`)) {
        await Promise.race([once(upstream, "drain"), relayed!]).catch(() => {});
      }
    }
    const result = await relayed!;
    client.destroy();
    server.close();
    assert.equal(result.termination, "write_timeout");
    assert.equal(hooks.slow, 1, "flagged slow once");
    assert.ok(hooks.waits.includes(300), "the wait that hit the deadline is reported");
    assert.equal(hooks.aborted, 1, "the worker side was stopped");
    assert.ok(upstream.destroyed);
    assert.ok(hooks.tokens > 0 && hooks.tokens < result.tokens + 1);
    const msgs = lines.map((l) => `${l.level}:${l.msg}`);
    assert.equal(msgs.filter((m) => m === "warn:stream.slow_client").length, 1);
    assert.ok(msgs.includes("debug:stream.buffer_high"));
    assert.equal(msgs.filter((m) => m === "warn:stream.write_timeout").length, 1);
  });
});

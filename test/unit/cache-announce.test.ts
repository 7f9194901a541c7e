import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { HeartbeatSender } from "../../src/worker/heartbeat-sender.js";
import { createLogger } from "../../src/common/logger.js";
import type { Heartbeat } from "../../src/protocol/heartbeat.js";

/**
 * HeartbeatSender.announced(): a completed stream's end waits until every coordinator answered a
 * beat carrying its cache event, never longer than its bound, and never again for a coordinator
 * whose last beat failed.
 */
const EPOCH = "e1";

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A coordinator that acknowledges whatever cache position a beat carries. */
function acking(): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const seq = (JSON.parse(body) as { cache: { seq: number } }).cache.seq;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ status: "ok", cache: { epoch: EPOCH, seq } }));
    });
  };
}

function sender(urls: string[], seq: () => number): HeartbeatSender {
  const build = () => ({ worker_id: "w1", cache: { epoch: EPOCH, seq: seq(), block_chars: 64 } }) as unknown as Heartbeat;
  // Never start()ed: only the beats that announced() asks for go out. 200 ms interval: a beat times out after 200 ms.
  return new HeartbeatSender(urls, 200, build, createLogger("worker", "silent"));
}

describe("a worker announces a cache event to every coordinator before a stream ends", () => {
  it("resolves once every coordinator has answered a beat carrying the event", async () => {
    const a = await listen(acking());
    const b = await listen(acking());
    let seq = 0;
    const s = sender([a.url, b.url], () => seq);
    try {
      seq = 1;
      assert.equal(await s.announced(EPOCH, 1, 5000), true);
      // Already delivered: no wait at all.
      assert.equal(await s.announced(EPOCH, 1, 5000), true);
    } finally {
      s.stop();
      a.server.close();
      b.server.close();
    }
  });

  it("waits at most its bound for a coordinator that never answers, and not again once that one failed", async () => {
    const good = await listen(acking());
    const silent = await listen(() => undefined); // accepts, never answers: a hung coordinator
    let seq = 0;
    const s = sender([good.url, silent.url], () => seq);
    try {
      seq = 1;
      let t0 = performance.now();
      assert.equal(await s.announced(EPOCH, 1, 100), false);
      const boundedMs = performance.now() - t0;
      assert.ok(boundedMs >= 95 && boundedMs < 1000, `waited ${boundedMs.toFixed(0)} ms`);
      // The hung beat times out (the heartbeat's own timeout, 200 ms here); after that the silent
      // coordinator counts as failing and stream ends no longer wait for it.
      seq = 2;
      const deadline = performance.now() + 10_000;
      for (;;) {
        t0 = performance.now();
        const ok = await s.announced(EPOCH, 2, 150);
        if (ok) break;
        assert.ok(performance.now() < deadline, "the hung coordinator should count as failing after its beat timed out");
      }
      assert.ok(performance.now() - t0 < 150);
    } finally {
      s.stop();
      good.server.close();
      silent.server.closeAllConnections();
      silent.server.close();
    }
  });

  it("a stopped sender releases every waiting stream at once", async () => {
    const silent = await listen(() => undefined);
    const s = sender([silent.url], () => 1);
    const t0 = performance.now();
    const p = s.announced(EPOCH, 1, 5000);
    s.stop();
    await p;
    assert.ok(performance.now() - t0 < 1000);
    silent.server.closeAllConnections();
    silent.server.close();
  });
});

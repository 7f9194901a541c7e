import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { startCluster, workerHealth } from "../helpers/cluster.js";
import { getJson, streamSse, waitFor } from "../helpers/http.js";

/**
 * A client that stops reading is dropped at the write deadline and its worker session freed, while
 * the other streams of the same worker run to their end. Sim engine with 4 KiB tokens, as fast as
 * the worker can send them: one relay write (64 tokens, 256 KiB) outgrows any socket buffer, so a
 * client that reads nothing makes the very next write wait, and the deadline runs from there.
 */
describe("a slow client", () => {
  it("is dropped within the write deadline and its worker session freed, while the other streams keep their speed", { timeout: 60_000 }, async () => {
    const cluster = await startCluster({
      workers: 1,
      coordinatorEnv: { CLIENT_WRITE_TIMEOUT_MS: "1000" },
      workerArgs: ["--engine", "sim", "--sim-itl-ms", "0", "--sim-itl-per-sequence-ms", "0", "--sim-token-chars", "4096",
        "--context-size", "1000000", "--sim-kv-bytes-per-token", "16"],
    });
    try {
      const w = cluster.workers[0]!;
      const port = Number(new URL(cluster.url).port);
      // The slow client: it sends its request and never reads a byte of the answer.
      const slow = connect(port, "127.0.0.1");
      slow.on("error", () => {});
      const body = JSON.stringify({ prompt: "a slow reader", model: "m", max_tokens: 900_000 });
      slow.write(`POST /coordinator/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: slow-reader\r\n\r\n${body}`);
      slow.pause();
      await waitFor(async () => (await workerHealth(w.url)).running === 1, "the slow stream decoding");
      const started = Date.now();
      // The others, on the same worker, while the slow one is stuck.
      const others = await Promise.all(
        Array.from({ length: 3 }, (_, i) => streamSse(`${cluster.url}/coordinator/infer`, { prompt: `reader ${i}`, model: "m", max_tokens: 500 })),
      );
      const othersMs = Date.now() - started;
      for (const r of others) {
        assert.equal(r.status, 200);
        assert.equal(r.last.reason, "length");
        assert.equal(r.events.filter((e) => e.finished === false).length, 500);
      }
      const end = await cluster.coordinator.proc.waitForLog((l) => l.msg === "stream.end" && l.request_id === "slow-reader", 20_000, "the slow stream's end");
      assert.equal(end.termination, "write_timeout");
      const dropMs = Date.parse(String(end.time)) - started;
      // Its worker session is freed; nothing is left on either side.
      await waitFor(async () => (await workerHealth(w.url)).active_sessions === 0, "the worker session freed", 5000);
      await waitFor(async () => (await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions === 0, "the coordinator session freed", 5000);
      const ended = await w.proc.waitForLog((l) => l.msg === "session.end" && l.request_id === "slow-reader", 5000, "its session.end");
      assert.ok((ended.completion_tokens as number) < 900_000, "the worker stopped generating for it");
      // The others never waited for the slow one: they finished without its backlog holding them.
      assert.ok(othersMs < 20_000, `the other streams took ${othersMs} ms (the slow one was dropped after ${dropMs} ms)`);
      slow.destroy();
    } finally {
      await cluster.stop();
    }
  });
});

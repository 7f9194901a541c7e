import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCoordinatorProc } from "../helpers/processes.js";
import { waitForRoutable } from "../helpers/cluster.js";
import { streamSse } from "../helpers/http.js";
import { startFakeWorker } from "../helpers/fake-worker.js";

/**
 * A worker cut off right after its last token (a partition, a crash between the token and the end
 * event): the client already holds every token it asked for, so its answer ends complete with finish
 * reason `length` once the stall timeout fires, not with a worker_stalled error. A fake worker stands
 * in for the cut-off one: it streams max_tokens tokens and then goes silent.
 */
const MAX_TOKENS = 4;

describe("a stream whose end event is lost", () => {
  it("ends complete (reason length) when every token the client asked for was relayed", async () => {
    const c = await startCoordinatorProc({ STREAM_STALL_TIMEOUT_MS: "500", PREFILL_RETRIES: "0" });
    const fake = await startFakeWorker(c.url, "fake-1", (req, res) => {
      if (req.url === "/worker/prefill") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: "ok", prompt_tokens: 2, kv_cache_bytes: 0, cached_tokens: 0, worker_id: "fake-1", max_tokens: MAX_TOKENS }));
      } else if (req.url === "/worker/decode") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        for (let i = 0; i < MAX_TOKENS; i++) res.write(`data: ${JSON.stringify({ token: ` t${i}`, seq: i })}\n\n`);
        // …and no end event: the connection stays open and silent.
      } else {
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      }
    });
    try {
      await waitForRoutable(c.url, 1);
      const r = await streamSse(`${c.url}/coordinator/infer`, { prompt: "hello", model: "fake", max_tokens: MAX_TOKENS });
      assert.equal(r.status, 200);
      assert.equal(r.events.filter((e) => e.finished === false).length, MAX_TOKENS);
      assert.equal(r.last.finished, true, JSON.stringify(r.last));
      assert.equal(r.last.reason, "length", JSON.stringify(r.last));
      assert.equal(r.last.error, undefined, JSON.stringify(r.last));
    } finally {
      await fake.stop();
      await c.proc.stop();
    }
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCoordinatorProc } from "../helpers/processes.js";
import { waitForRoutable } from "../helpers/cluster.js";
import { streamSse } from "../helpers/http.js";
import { startFakeWorker } from "../helpers/fake-worker.js";

/**
 * A mixed-version fleet: a worker from before /worker/generate answers it 404 (its router knows no
 * such route). The coordinator serves it with the two calls, prefill then decode, and remembers:
 * its next request goes straight to the two calls. A fake stands in for the older worker.
 */
describe("a worker without the one-exchange route", () => {
  it("is served with prefill then decode, and asked for generate only once", async () => {
    const c = await startCoordinatorProc({ PREFILL_RETRIES: "0" });
    const fake = await startFakeWorker(c.url, "old-1", (req, res) => {
      if (req.url === "/worker/prefill") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: "ok", prompt_tokens: 2, kv_cache_bytes: 0, cached_tokens: 0, worker_id: "old-1", max_tokens: 2 }));
      } else if (req.url === "/worker/decode") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end('data: {"token":" a","seq":0}\n\ndata: {"token":" b","seq":1}\n\n'
          + 'data: {"token":"","seq":2,"finished":true,"reason":"length","prompt_tokens":2,"completion_tokens":2}\n\n');
      } else {
        res.writeHead(404, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: `no route for ${req.url}`, reason: "not_found" }));
      }
    });
    try {
      await waitForRoutable(c.url, 1);
      for (let i = 0; i < 2; i++) {
        const r = await streamSse(`${c.url}/coordinator/infer`, { prompt: "hello", model: "fake", max_tokens: 2 });
        assert.equal(r.status, 200);
        assert.equal(r.text, " a b");
        assert.equal(r.last.finished, true);
        assert.equal(r.last.reason, "length");
      }
      assert.equal(fake.hits.get("/worker/generate"), 1);
      assert.equal(fake.hits.get("/worker/prefill"), 2);
      assert.equal(fake.hits.get("/worker/decode"), 2);
    } finally {
      await fake.stop();
      await c.proc.stop();
    }
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCoordinatorProc, startWorkerProc } from "../helpers/processes.js";
import { waitForRoutable } from "../helpers/cluster.js";
import { getJson, postJson, streamSse, waitFor } from "../helpers/http.js";

const SIM = ["--engine", "sim", "--sim-itl-ms", "20", "--sim-itl-per-sequence-ms", "0"];

describe("coordinator readiness and SIGTERM drain", () => {
  it("readiness is 503 without a routable worker and 200 with one", async () => {
    const c = await startCoordinatorProc();
    try {
      const before = await getJson(`${c.url}/coordinator/ready`);
      assert.equal(before.status, 503);
      assert.deepEqual(before.body, { ready: false, draining: false, routable_workers: 0 });
      const w = await startWorkerProc(c.url, { id: "w1", args: SIM });
      try {
        await waitForRoutable(c.url, 1);
        const after = await getJson(`${c.url}/coordinator/ready`);
        assert.equal(after.status, 200);
        assert.deepEqual(after.body, { ready: true, draining: false, routable_workers: 1 });
      } finally {
        await w.proc.stop();
      }
    } finally {
      await c.proc.stop();
    }
  });

  it("on SIGTERM a coordinator turns unready, refuses new requests with 503 draining, finishes its running stream, then exits", async () => {
    const c = await startCoordinatorProc({ COORDINATOR_DRAIN_TIMEOUT_MS: "20000" });
    const w = await startWorkerProc(c.url, { id: "w1", args: SIM });
    try {
      await waitForRoutable(c.url, 1);
      // 100 tokens at 20 ms: a stream of about 2 s that is running when SIGTERM comes.
      const running = streamSse(`${c.url}/coordinator/infer`, { prompt: "a long tale", model: "m", max_tokens: 100 });
      await waitFor(async () => (await getJson(`${c.url}/coordinator/health`)).body.active_sessions === 1, "the stream running");
      c.proc.kill("SIGTERM");
      await c.proc.waitForLog((l) => l.msg === "coordinator.draining", 5000, "coordinator.draining");
      const ready = await getJson(`${c.url}/coordinator/ready`);
      assert.equal(ready.status, 503);
      assert.equal(ready.body.draining, true);
      const refused = await postJson(`${c.url}/coordinator/infer`, { prompt: "late", model: "m", max_tokens: 2, stream: false });
      assert.equal(refused.status, 503);
      assert.equal(refused.body.reason, "draining");
      assert.equal(c.proc.alive, true, "still up while its stream runs");
      const r = await running;
      assert.equal(r.status, 200);
      assert.equal(r.events.filter((e) => e.finished === false).length, 100, "the running stream finished whole");
      assert.equal(r.last.finished, true);
      const drained = await c.proc.waitForLog((l) => l.msg === "coordinator.drained", 5000, "coordinator.drained");
      assert.equal(drained.open_requests, 0);
      const exit = await c.proc.exited;
      assert.equal(exit.code, 0);
    } finally {
      await Promise.all([c.proc.stop(), w.proc.stop()]);
    }
  });
});

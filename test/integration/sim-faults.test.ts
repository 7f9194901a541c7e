import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCluster, waitForRoutable, type Cluster } from "../helpers/cluster.js";
import { streamSse } from "../helpers/http.js";
import { startCoordinatorProc, startWorkerProc } from "../helpers/processes.js";

const SIM = ["--engine", "sim", "--sim-itl-ms", "5", "--sim-prefill-base-ms", "1"];

describe("sim engine faults, set by flag on real worker processes", () => {
  const stops: (() => Promise<void>)[] = [];
  after(async () => {
    for (const s of stops) await s();
  });

  it("a worker set to crash after 5 tokens dies, and the stream ends in an error after at most those 5 tokens", async () => {
    const cluster: Cluster = await startCluster({ workers: 1, workerArgs: [...SIM, "--sim-crash-after-tokens", "5"] });
    stops.push(() => cluster.stop());
    const res = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "crash", model: "sim", max_tokens: 20 });
    assert.equal(res.status, 200);
    const streamed = res.events.filter((e) => e.finished === false).length;
    // The kill can land before the last tokens (or all of them) left the worker's socket.
    assert.ok(streamed <= 5, `${streamed} tokens`);
    assert.equal(res.last.finished, true);
    assert.equal(res.last.reason, "error");
    const exit = await cluster.workers[0]!.proc.exited;
    assert.equal(exit.signal, "SIGKILL");
  });

  it("prefills that fail on one worker are retried on the other, and clients see success", async () => {
    const coordinator = await startCoordinatorProc();
    const failing = await startWorkerProc(coordinator.url, { id: "failing", args: [...SIM, "--sim-fail-prefill", "1"] });
    const healthy = await startWorkerProc(coordinator.url, { id: "healthy", args: SIM });
    stops.push(async () => {
      await Promise.all([failing.proc.stop(), healthy.proc.stop(), coordinator.proc.stop()]);
    });
    await waitForRoutable(coordinator.url, 2);
    for (let i = 0; i < 4; i++) {
      const res = await streamSse(`${coordinator.url}/coordinator/infer`, { prompt: `retry ${i}`, model: "sim", max_tokens: 3 });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-worker-id"], "healthy");
      assert.equal(res.last.reason, "length");
    }
    assert.ok(failing.proc.logs.some((l) => l.msg === "session.end" && l.reason === "prefill_failed"));
  });
});

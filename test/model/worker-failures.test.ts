import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "undici";
import { startCluster, waitForRoutable, workerHealth } from "../helpers/cluster.js";
import { getJson, streamSse, waitFor } from "../helpers/http.js";
import { STORIES_MODEL, missingModel, startCoordinatorProc, startWorkerProc } from "../helpers/processes.js";
import { freePort } from "../helpers/ports.js";

const skip = missingModel(STORIES_MODEL);
// stories260K ends a story with BOS, which ends generation; banning BOS and EOS makes a stream run
// to max_tokens, so that it is still running when the test acts on it.
const LONG = { logit_bias: { "1": -100, "2": -100 } };

describe("worker failures", { skip }, () => {
  it("retries the prefill on another worker when the picked one is dead, and the client sees success", async () => {
    // Long heartbeats keep the dead worker looking fresh, so the scheduler does pick it.
    const cluster = await startCluster({
      workers: 2, model: STORIES_MODEL,
      coordinatorEnv: { HEARTBEAT_INTERVAL_MS: "60000" }, workerEnv: { HEARTBEAT_INTERVAL_MS: "60000" },
    });
    try {
      const w1 = cluster.workers[0]!;
      w1.proc.kill("SIGKILL");
      await w1.proc.exited;
      // Both idle: ties go to w1, which is dead.
      const res = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once upon a time", model: "m", max_tokens: 10 });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-worker-id"], "w2");
      assert.match(String(res.headers["x-route-decision"]), /attempts=2/);
      assert.equal(res.last.reason, "length");
      const workers = (await getJson(`${cluster.url}/coordinator/health/workers`)).body.workers as { worker_id: string; healthy: boolean }[];
      assert.equal(workers.find((w) => w.worker_id === "w1")!.healthy, false, "a connection failure marks the worker unhealthy at once");
      assert.equal((await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions, 0);
    } finally {
      await cluster.stop();
    }
  });

  it("fails a prefill to a hung worker cleanly at the timeout, marks it unhealthy and retries elsewhere", async () => {
    const cluster = await startCluster({
      workers: 2, model: STORIES_MODEL,
      coordinatorEnv: { HEARTBEAT_INTERVAL_MS: "60000", PREFILL_TIMEOUT_MS: "1000" }, workerEnv: { HEARTBEAT_INTERVAL_MS: "60000" },
    });
    const w1 = cluster.workers[0]!;
    try {
      w1.proc.kill("SIGSTOP");
      const t0 = Date.now();
      const res = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once upon a time", model: "m", max_tokens: 10 });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-worker-id"], "w2");
      assert.ok(Date.now() - t0 >= 1000, "the hung worker was waited for no longer than the timeout");
      const workers = (await getJson(`${cluster.url}/coordinator/health/workers`)).body.workers as { worker_id: string; healthy: boolean }[];
      assert.equal(workers.find((w) => w.worker_id === "w1")!.healthy, false);
      const next = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once", model: "m", max_tokens: 5 });
      assert.equal(next.headers["x-worker-id"], "w2", "an unhealthy worker gets no new work");
    } finally {
      w1.proc.kill("SIGCONT");
      await cluster.stop();
    }
  });

  it("never takes a worker out of rotation for requests that are the client's fault", async () => {
    const cluster = await startCluster({ workers: 1, model: STORIES_MODEL });
    try {
      const long = "Once upon a time there was a little girl. ".repeat(300);
      for (let i = 0; i < 6; i++) {
        const r = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: long, model: "m", max_tokens: 5 });
        assert.equal(r.status, 400);
      }
      const workers = (await getJson(`${cluster.url}/coordinator/health/workers`)).body.workers as { breaker: string }[];
      assert.equal(workers[0]!.breaker, "closed");
      const ok = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once", model: "m", max_tokens: 5 });
      assert.equal(ok.status, 200);
    } finally {
      await cluster.stop();
    }
  });

  it("answers 502 naming the workers tried when every prefill fails", async () => {
    const cluster = await startCluster({
      workers: 1, model: STORIES_MODEL,
      coordinatorEnv: { HEARTBEAT_INTERVAL_MS: "60000" }, workerEnv: { HEARTBEAT_INTERVAL_MS: "60000" },
    });
    try {
      cluster.workers[0]!.proc.kill("SIGKILL");
      await cluster.workers[0]!.proc.exited;
      const res = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once", model: "m", max_tokens: 5 });
      assert.equal(res.status, 502);
      assert.equal(res.events[0].reason, "worker_failed");
      assert.match(res.events[0].error, /w1/);
    } finally {
      await cluster.stop();
    }
  });

  it("continues the streams of a worker killed mid-decode on the other worker, each one complete", async () => {
    const cluster = await startCluster({ workers: 2, model: STORIES_MODEL });
    try {
      const victim = cluster.workers[0]!;
      const streams = Array.from({ length: 6 }, () =>
        streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once upon a time", model: "m", max_tokens: 600, ...LONG }),
      );
      await waitFor(async () => (await workerHealth(victim.url)).running >= 2, "streams decoding on the victim");
      victim.proc.kill("SIGKILL");
      const results = await Promise.all(streams);
      const moved = results.filter((r) => r.headers["x-worker-id"] === "w1");
      assert.ok(moved.length >= 2);
      for (const r of results) {
        assert.equal(r.status, 200);
        assert.equal(r.last.reason, "length", "no stream ends in an error");
        assert.equal(r.events.filter((e) => e.finished === false).length, 600, "no token lost or repeated");
      }
      const failovers = cluster.coordinator.proc.logs.filter((l) => l.msg === "stream.failover");
      assert.equal(failovers.length, moved.length);
      await waitFor(async () => (await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions === 0, "coordinator sessions at 0");
      await waitFor(async () => (await workerHealth(cluster.workers[1]!.url)).active_sessions === 0, "survivor sessions at 0");
    } finally {
      await cluster.stop();
    }
  });

  it("ends the streams of a worker killed mid-decode with an error event when failover is off, leaving 0 sessions", async () => {
    const cluster = await startCluster({ workers: 2, model: STORIES_MODEL, coordinatorEnv: { MAX_FAILOVERS: "0" } });
    try {
      const victim = cluster.workers[0]!;
      const streams = Array.from({ length: 6 }, () =>
        streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once upon a time", model: "m", max_tokens: 1900, ...LONG }),
      );
      await waitFor(async () => (await workerHealth(victim.url)).running >= 2, "streams decoding on the victim");
      victim.proc.kill("SIGKILL");
      const results = await Promise.all(streams);
      const onVictim = results.filter((r) => r.headers["x-worker-id"] === "w1");
      const onOther = results.filter((r) => r.headers["x-worker-id"] === "w2");
      assert.ok(onVictim.length >= 2);
      for (const r of onVictim) {
        assert.equal(r.status, 200);
        assert.equal(r.last.finished, true);
        assert.equal(r.last.reason, "error");
        assert.equal(r.last.error.code, "worker_error");
      }
      for (const r of onOther) assert.equal(r.last.reason, "length", "the other worker's streams are unaffected");
      await waitFor(async () => (await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions === 0, "coordinator sessions at 0");
      assert.equal((await workerHealth(cluster.workers[1]!.url)).active_sessions, 0);
    } finally {
      await cluster.stop();
    }
  });

  it("drains on SIGTERM: running decodes finish, new prefills are refused, the worker exits 0", async () => {
    const cluster = await startCluster({ workers: 1, model: STORIES_MODEL, workerEnv: { PARALLEL: "2" } });
    try {
      const w = cluster.workers[0]!;
      const running = streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once upon a time", model: "m", max_tokens: 1500, ...LONG });
      await waitFor(async () => (await workerHealth(w.url)).running === 1, "a stream decoding");
      w.proc.kill("SIGTERM");
      await waitFor(async () => (await workerHealth(w.url)).draining === true, "worker draining");
      const refused = await request(`${w.url}/worker/prefill`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ session_id: "3b241101-e2bb-4255-8caf-4136c566a962", prompt: "x", max_tokens: 1 }),
      });
      assert.equal(refused.statusCode, 503);
      assert.equal((await refused.body.json() as { reason: string }).reason, "draining");
      // The coordinator learns of the drain from the worker's immediate heartbeat and routes nothing there.
      const rejected = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once", model: "m", max_tokens: 5 });
      assert.equal(rejected.status, 503);
      assert.equal(rejected.events[0].reason, "no_workers");
      const done = await running;
      assert.equal(done.last.reason, "length");
      assert.equal(done.events.filter((e) => e.finished === false).length, 1500);
      const exit = await w.proc.exited;
      assert.equal(exit.code, 0);
    } finally {
      await cluster.stop();
    }
  });

  it("gets its workers back from heartbeats after a coordinator restart, with no worker restarted", async () => {
    const port = await freePort();
    const env = { PORT: String(port) };
    let coordinator = await startCoordinatorProc(env);
    const workers = await Promise.all([1, 2].map((i) => startWorkerProc(coordinator.url, { model: STORIES_MODEL, id: `w${i}` })));
    try {
      await waitForRoutable(coordinator.url, 2);
      coordinator.proc.kill("SIGKILL");
      await coordinator.proc.exited;
      coordinator = await startCoordinatorProc(env);
      await waitForRoutable(coordinator.url, 2, 10_000);
      const res = await streamSse(`${coordinator.url}/coordinator/infer`, { prompt: "Once", model: "m", max_tokens: 5 });
      assert.equal(res.status, 200);
      for (const w of workers) assert.equal(w.proc.alive, true);
    } finally {
      await Promise.all([coordinator.proc.stop(), ...workers.map((w) => w.proc.stop())]);
    }
  });
});

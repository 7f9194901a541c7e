import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "undici";
import { startCluster, workerHealth, type Cluster } from "../helpers/cluster.js";
import { getJson, streamSse, waitFor } from "../helpers/http.js";
import { STORIES_MODEL, missingModel } from "../helpers/processes.js";

const skip = missingModel(STORIES_MODEL);

describe("a fleet of two stories260K workers", { skip }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ workers: 2, model: STORIES_MODEL, workerEnv: { PARALLEL: "8" } });
  });
  after(async () => cluster?.stop());

  it("streams 20 concurrent completions spread over both workers", async () => {
    const prompts = Array.from({ length: 20 }, (_, i) => `Once upon a time there was a ${["cat", "dog", "girl", "boy"][i % 4]}`);
    const results = await Promise.all(
      prompts.map((prompt) => streamSse(`${cluster.url}/coordinator/infer`, { prompt, model: "tinyllama-1.1b", max_tokens: 40 })),
    );
    const perWorker = new Map<string, number>();
    for (const r of results) {
      assert.equal(r.status, 200, `refused: ${JSON.stringify(r.events[0])}`);
      assert.equal(r.last.finished, true);
      assert.equal(r.last.reason, "length");
      assert.equal(r.events.filter((e) => e.finished === false).length, 40);
      const w = String(r.headers["x-worker-id"]);
      perWorker.set(w, (perWorker.get(w) ?? 0) + 1);
    }
    assert.deepEqual([...perWorker.keys()].sort(), ["w1", "w2"]);
    for (const n of perWorker.values()) assert.ok(n >= 5, `each worker took a fair share: ${[...perWorker]}`);
    // Every end path released its session: coordinator and workers return to zero.
    await waitFor(async () => (await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions === 0, "coordinator sessions at 0");
    for (const w of cluster.workers) {
      const h = await waitFor(async () => {
        const x = await workerHealth(w.url);
        return x.active_sessions === 0 && x.slots.busy === 0 && x.kv_reserved_bytes === 0 ? x : undefined;
      }, "worker counters at 0");
      assert.equal(h.kv_cache_bytes, 0);
    }
  });

  it("frees the worker session within 1 s of a client disconnect", async () => {
    const ac = new AbortController();
    const res = await request(`${cluster.url}/coordinator/infer`, {
      method: "POST", signal: ac.signal, headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "Once upon a time", model: "m", max_tokens: 2000, logit_bias: { "1": -100, "2": -100 } }),
    });
    assert.equal(res.statusCode, 200);
    const worker = cluster.workers.find((w) => w.proc.name === res.headers["x-worker-id"])!;
    // Read a little (without ending the body), then hang up mid-stream.
    await new Promise<void>((resolve) => res.body.once("data", () => resolve()));
    res.body.pause();
    assert.equal((await workerHealth(worker.url)).active_sessions, 1);
    const t0 = Date.now();
    ac.abort();
    await waitFor(async () => (await workerHealth(worker.url)).active_sessions === 0, "worker session freed", 1000, 10);
    assert.ok(Date.now() - t0 <= 1000);
    const line = await worker.proc.waitForLog((l) => l.msg === "session.end" && l.reason === "disconnect", 2000, "session.end disconnect");
    assert.ok(line.completion_tokens as number < 2000);
    await waitFor(async () => (await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions === 0, "coordinator session freed", 1000, 10);
  });

  it("answers prompts longer than the context with 400 prompt_too_long, and nothing leaks", async () => {
    const prompt = "Once upon a time there was a little girl named Lily. ".repeat(200);
    const res = await streamSse(`${cluster.url}/coordinator/infer`, { prompt, model: "m", max_tokens: 10 });
    assert.equal(res.status, 400);
    assert.equal(res.events[0].reason, "prompt_too_long");
    const tooMany = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once", model: "m", max_tokens: 5000 });
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.events[0].param, "max_tokens");
    for (const w of cluster.workers) assert.equal((await workerHealth(w.url)).active_sessions, 0);
    assert.equal((await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions, 0);
  });
});

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { getJson } from "../helpers/http.js";
import { STORIES_MODEL, missingModel, spawnCli, startWorkerProc, type Proc } from "../helpers/processes.js";

/**
 * The configuration a worker chooses for itself: the engine (our native decode loop on CPU), its
 * compute threads (from the cores and the model's size, never oversubscribing unless forced) and
 * its process environment (one libuv thread).
 */
const skip = missingModel(STORIES_MODEL);
const NO_COORDINATOR = "http://127.0.0.1:9";

describe("a worker's engine configuration", { skip }, () => {
  const procs: Proc[] = [];
  after(async () => Promise.all(procs.map((p) => p.stop())));

  it("runs the native engine on CPU by default, one compute thread for a tiny model", async () => {
    const w = await startWorkerProc(NO_COORDINATOR, { model: STORIES_MODEL, env: { THREADS: "auto" } });
    procs.push(w.proc);
    const health = await getJson(`${w.url}/worker/health`);
    assert.equal(health.body.engine, "native");
    assert.equal(health.body.threads, 1);
    const choice = await w.proc.waitForLog((l) => l.msg === "engine.choice");
    assert.equal(choice.engine, "native");
    await w.proc.stop();
  });

  it("gets a libuv pool of one thread from the launcher unless UV_THREADPOOL_SIZE says otherwise", async () => {
    // Processes alike but for the pool differ in thread count by exactly the pool's size difference.
    const threadsOf = async (env: Record<string, string>) => {
      const w = await startWorkerProc(NO_COORDINATOR, { model: STORIES_MODEL, env });
      procs.push(w.proc);
      const n = readdirSync(`/proc/${w.proc.pid}/task`).length;
      await w.proc.stop();
      return n;
    };
    const launched = await threadsOf({});
    assert.equal(await threadsOf({ UV_THREADPOOL_SIZE: "1" }), launched);
    assert.equal(await threadsOf({ UV_THREADPOOL_SIZE: "4" }), launched + 3);
  });

  it("serves through node-llama-cpp when ENGINE=llama", async () => {
    const w = await startWorkerProc(NO_COORDINATOR, { model: STORIES_MODEL, env: { ENGINE: "llama" } });
    procs.push(w.proc);
    const health = await getJson(`${w.url}/worker/health`);
    assert.equal(health.body.engine, "llama");
    await w.proc.stop();
  });

  it("refuses more compute threads than cores, and accepts them when forced", async () => {
    const tooMany = String(availableParallelism() + 1);
    const refused = spawnCli("worker", ["worker", "--port", "0", "--host", "127.0.0.1", "--model", STORIES_MODEL], {
      COORDINATOR_URL: NO_COORDINATOR, THREADS: tooMany,
    });
    procs.push(refused);
    const { code } = await refused.exited;
    assert.notEqual(code, 0);
    assert.match(refused.stderr.join(""), /exceeds the \d+ cores/);

    const forced = await startWorkerProc(NO_COORDINATOR, { model: STORIES_MODEL, env: { THREADS: tooMany, FORCE_THREADS: "true" } });
    procs.push(forced.proc);
    const health = await getJson(`${forced.url}/worker/health`);
    assert.equal(health.body.threads, Number(tooMany));
    await forced.proc.stop();
  });
});

describe("a worker's model names", () => {
  it("refuses at start more aliases than a coordinator accepts in a heartbeat, without loading a model", async () => {
    const aliases = Array.from({ length: 33 }, (_, i) => `name-${i}`).join(",");
    const refused = spawnCli("worker", ["worker", "--port", "0", "--host", "127.0.0.1"], { COORDINATOR_URL: NO_COORDINATOR, MODEL_ALIASES: aliases });
    const { code } = await refused.exited;
    assert.equal(code, 2);
    assert.match(refused.stderr.join(""), /configuration error: invalid value for MODEL_ALIASES: 33 names \(expected at most 32\)/);
  });
});

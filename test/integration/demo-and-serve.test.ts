import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitForRoutable, workerHealth } from "../helpers/cluster.js";
import { getJson, streamSse, waitFor } from "../helpers/http.js";
import { spawnCli, startCoordinatorProc, startWorkerProc } from "../helpers/processes.js";
import { freePort } from "../helpers/ports.js";

describe("out of the box", () => {
  it("a worker with no model writes the built-in demo model, says so, and generates", async () => {
    const dir = await mkdtemp(join(tmpdir(), "models-"));
    const c = await startCoordinatorProc();
    const w = await startWorkerProc(c.url, { id: "demo", env: { MODELS_DIR: dir } });
    try {
      const banner = await w.proc.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("model.demo"), 1000, "demo banner");
      assert.match(String(banner.msg), /meaningless/);
      assert.match(String(banner.msg), /--model/);
      await waitForRoutable(c.url, 1);
      const res = await streamSse(`${c.url}/coordinator/infer`, { prompt: "Once upon a time", model: "tinyllama-1.1b", max_tokens: 16 });
      assert.equal(res.status, 200);
      assert.equal(res.last.finished, true);
      assert.ok(res.events.length >= 2);
      assert.equal((await workerHealth(w.url)).model.id, "demo");
    } finally {
      await Promise.all([w.proc.stop(), c.proc.stop()]);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("`serve` starts a coordinator and two workers that answer, and stops them all on SIGTERM", async () => {
    const dir = await mkdtemp(join(tmpdir(), "models-"));
    const port = await freePort();
    const serve = spawnCli("serve", ["serve", "--port", String(port), "--worker-port", "0", "--models-dir", dir], {
      HEARTBEAT_INTERVAL_MS: "200", PARALLEL: "2",
    });
    const url = `http://127.0.0.1:${port}`;
    try {
      await serve.waitForLog((l) => typeof l.msg === "string" && l.msg.startsWith("serve.ready"), 30_000, "serve.ready");
      await waitForRoutable(url, 2, 60_000);
      const res = await streamSse(`${url}/coordinator/infer`, { prompt: "Hello", model: "any", max_tokens: 8 });
      assert.equal(res.status, 200);
      const workers = (await getJson(`${url}/coordinator/health/workers`)).body.workers as { threads: number }[];
      assert.equal(workers.length, 2);
      // Two workers on this machine share its cores; the tiny demo model gets one thread each.
      for (const wk of workers) assert.equal(wk.threads, 1);
      serve.kill("SIGTERM");
      const exit = await serve.exited;
      assert.equal(exit.code, 0);
      await waitFor(async () => {
        try {
          await getJson(`${url}/coordinator/health`);
          return false;
        } catch {
          return true;
        }
      }, "coordinator gone");
      const stopped = serve.logs.filter((l) => l.msg === "worker.stopped").length;
      assert.equal(stopped, 2, "both workers stopped with serve");
    } finally {
      await serve.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

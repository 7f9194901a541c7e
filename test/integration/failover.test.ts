import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";
import { waitForRoutable, workerHealth } from "../helpers/cluster.js";
import { getJson, postJson, streamSse, waitFor } from "../helpers/http.js";

/**
 * Mid-stream failover with sim workers: w1 is the faulty one (picked first: ties go to the lowest
 * id), w2 is healthy. The client must see one gap-free stream of exactly max_tokens tokens.
 */
const FAST = ["--engine", "sim", "--sim-itl-ms", "2", "--sim-itl-per-sequence-ms", "0"];

async function fleet(faulty: string[], coordinatorEnv: Record<string, string> = {}) {
  const c = await startCoordinatorProc({ STREAM_STALL_TIMEOUT_MS: "500", FIRST_TOKEN_TIMEOUT_MS: "500", ...coordinatorEnv });
  const w1 = await startWorkerProc(c.url, { id: "w1", args: [...FAST, ...faulty] });
  const w2 = await startWorkerProc(c.url, { id: "w2", args: FAST });
  await waitForRoutable(c.url, 2);
  return {
    c, w1, w2,
    stop: () => Promise.all([c.proc.stop(), w1.proc.stop(), w2.proc.stop()]),
  };
}

async function noLeaks(c: Served, workers: Served[]) {
  await waitFor(async () => (await getJson(`${c.url}/coordinator/health`)).body.active_sessions === 0, "coordinator sessions at 0");
  for (const w of workers) {
    if (!w.proc.alive) continue;
    await waitFor(async () => (await workerHealth(w.url)).active_sessions === 0, `${w.proc.name} sessions at 0`);
  }
}

describe("mid-stream failover", () => {
  it("continues a stream on another worker when its worker is killed mid-decode", async () => {
    const f = await fleet(["--sim-crash-after-tokens", "20"]);
    try {
      const r = await streamSse(`${f.c.url}/coordinator/infer`, { prompt: "once upon a time", model: "m", max_tokens: 60 });
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-worker-id"], "w1");
      const tokens = r.events.filter((e) => e.finished === false);
      assert.equal(tokens.length, 60, "no token lost, none repeated");
      assert.equal(r.last.finished, true);
      assert.equal(r.last.reason, "length");
      assert.equal(r.last.completion_tokens, 60);
      assert.equal(r.events.filter((e) => e.error !== undefined).length, 0);
      const line = await f.c.proc.waitForLog((l) => l.msg === "stream.failover", 1000, "stream.failover");
      assert.equal(line.worker_id, "w1");
      assert.ok((line.relayed_tokens as number) > 0 && (line.relayed_tokens as number) <= 20, "the tokens relayed before the crash");
      await f.w1.proc.exited;
      await noLeaks(f.c, [f.w2]);
    } finally {
      await f.stop();
    }
  });

  it("continues a stream whose worker stalls, after the stall timeout, and frees the stalled session", async () => {
    const f = await fleet(["--sim-stall-after-tokens", "10", "--sim-stall-ms", "0"]);
    try {
      const t0 = Date.now();
      const r = await streamSse(`${f.c.url}/coordinator/infer`, { prompt: "a stalled tale", model: "m", max_tokens: 40 });
      assert.equal(r.events.filter((e) => e.finished === false).length, 40);
      assert.equal(r.last.reason, "length");
      assert.ok(Date.now() - t0 >= 500, "the stall was waited out");
      await f.c.proc.waitForLog((l) => l.msg === "stream.worker_stalled", 1000, "stream.worker_stalled");
      await noLeaks(f.c, [f.w1, f.w2]);
      const workers = (await getJson(`${f.c.url}/coordinator/health/workers`)).body.workers as { worker_id: string; breaker: string }[];
      assert.equal(workers.find((w) => w.worker_id === "w1")!.breaker !== "closed", true, "a stall counts against the worker");
    } finally {
      await f.stop();
    }
  });

  it("continues a one-body OpenAI answer too, with usage counting every token once", async () => {
    const f = await fleet(["--sim-crash-after-tokens", "15"]);
    try {
      const r = await postJson(`${f.c.url}/v1/completions`, { model: "sim", prompt: "hello there", max_tokens: 50 });
      assert.equal(r.status, 200);
      assert.equal(r.body.choices[0].finish_reason, "length");
      assert.equal(r.body.usage.completion_tokens, 50);
      assert.ok(r.body.usage.prompt_tokens > 0);
      await noLeaks(f.c, [f.w2]);
    } finally {
      await f.stop();
    }
  });

  it("ends the stream with an error event when failover is off (MAX_FAILOVERS=0)", async () => {
    const f = await fleet(["--sim-crash-after-tokens", "20"], { MAX_FAILOVERS: "0" });
    try {
      const r = await streamSse(`${f.c.url}/coordinator/infer`, { prompt: "once upon a time", model: "m", max_tokens: 60 });
      assert.equal(r.status, 200);
      assert.equal(r.last.finished, true);
      assert.equal(r.last.reason, "error");
      const relayed = r.events.filter((e) => e.finished === false).length;
      assert.ok(relayed > 0 && relayed <= 20, `${relayed} tokens before the crash`);
      await noLeaks(f.c, [f.w2]);
    } finally {
      await f.stop();
    }
  });

  it("moves a stream whose worker never sends its first token", async () => {
    const f = await fleet(["--sim-stall-after-tokens", "0", "--sim-stall-ms", "0"]);
    try {
      const r = await streamSse(`${f.c.url}/coordinator/infer`, { prompt: "silence", model: "m", max_tokens: 10 });
      assert.equal(r.events.filter((e) => e.finished === false).length, 10);
      assert.equal(r.last.reason, "length");
      const stalled = await f.c.proc.waitForLog((l) => l.msg === "stream.worker_stalled", 1000, "stream.worker_stalled");
      assert.equal(stalled.first_token, true);
    } finally {
      await f.stop();
    }
  });
});

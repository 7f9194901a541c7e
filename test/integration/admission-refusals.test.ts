import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCoordinatorProc, startWorkerProc } from "../helpers/processes.js";
import { waitForRoutable } from "../helpers/cluster.js";
import { getJson, postJson, waitFor } from "../helpers/http.js";
import { parsePromText, sampleValue, scrape } from "../helpers/prom-text.js";
import { request } from "undici";

/**
 * Admission outcomes a client and an operator can tell apart: a request that can never fit is
 * refused at once naming the limit (not after QUEUE_TIMEOUT_MS), a client that hangs up while
 * queued counts as client_closed (499), and the queue-length gauge and the dashboard see the queue.
 */
const SIM = ["--engine", "sim", "--sim-itl-ms", "20", "--sim-itl-per-sequence-ms", "0"];
const QUEUE_TIMEOUT_MS = 8000;

async function fleet(workerArgs: string[], coordinatorEnv: Record<string, string> = {}) {
  const c = await startCoordinatorProc({ QUEUE_TIMEOUT_MS: String(QUEUE_TIMEOUT_MS), ...coordinatorEnv });
  const w = await startWorkerProc(c.url, { id: "w1", args: [...SIM, ...workerArgs] });
  await waitForRoutable(c.url, 1);
  return { c, w, stop: () => Promise.all([c.proc.stop(), w.proc.stop()]) };
}

describe("requests that can never fit", () => {
  it("max_tokens beyond every worker's context is refused at once with 400 context_length_exceeded", async () => {
    const f = await fleet(["--context-size", "256"]);
    try {
      const t0 = Date.now();
      const r = await postJson(`${f.c.url}/coordinator/infer`, { prompt: "hello", model: "m", max_tokens: 5000 });
      const ms = Date.now() - t0;
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.reason, "context_length_exceeded");
      assert.match(r.body.error, /256 tokens/);
      assert.ok(ms < 1000, `refused in ${ms} ms`);
      const oai = await postJson(`${f.c.url}/v1/completions`, { prompt: "hello", model: "sim", max_tokens: 5000 });
      assert.equal(oai.status, 400);
      assert.equal(oai.body.error.code, "context_length_exceeded");
      console.log(`# never fits (context 256, max_tokens 5000): 400 context_length_exceeded in ${ms} ms`);
    } finally {
      await f.stop();
    }
  });

  it("a request over every worker's per-session KV limit is refused at once with 413 session_kv_limit_exceeded", async () => {
    // 22528 bytes per token (the sim's default): 2 MB hold about 88 tokens.
    const f = await fleet(["--worker-max-session-kv-bytes", "2000000"]);
    try {
      const t0 = Date.now();
      const r = await postJson(`${f.c.url}/coordinator/infer`, { prompt: "hello", model: "m", max_tokens: 200 });
      const ms = Date.now() - t0;
      assert.equal(r.status, 413, JSON.stringify(r.body));
      assert.equal(r.body.reason, "session_kv_limit_exceeded");
      assert.match(r.body.error, /2000000 bytes/);
      assert.ok(ms < 1000, `refused in ${ms} ms`);
      const fits = await postJson(`${f.c.url}/coordinator/infer`, { prompt: "hello", model: "m", max_tokens: 20 });
      assert.equal(fits.status, 200, "a request within the limit is served");
      console.log(`# never fits (per-session KV 2 MB, max_tokens 200): 413 session_kv_limit_exceeded in ${ms} ms`);
    } finally {
      await f.stop();
    }
  });
});

describe("the admission queue, observed", () => {
  it("the queue-length gauge and the dashboard count a waiting request, and a client that leaves it is client_closed (499)", async () => {
    const f = await fleet([], { SYSTEM_MAX_SESSIONS: "1" });
    try {
      const first = request(`${f.c.url}/coordinator/infer`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "the long one", model: "m", max_tokens: 400 }),
      });
      const held = await first;
      const ac = new AbortController();
      const second = request(`${f.c.url}/coordinator/infer`, {
        method: "POST", headers: { "content-type": "application/json" }, signal: ac.signal,
        body: JSON.stringify({ prompt: "the waiting one", model: "m", max_tokens: 4 }),
      }).catch((e: Error) => e);
      const gauge = async () => sampleValue(parsePromText((await scrape(f.c.url)).text), "inference_coordinator_queue_length");
      await waitFor(async () => (await gauge()) === 1, "queue_length 1");
      const state = (await getJson(`${f.c.url}/dashboard/api/state`)).body;
      assert.deepEqual(state.queue, { length: 1, enabled: true });
      ac.abort();
      await second;
      await waitFor(async () => (await gauge()) === 0, "queue_length 0");
      const samples = async () => parsePromText((await scrape(f.c.url)).text);
      await waitFor(async () => sampleValue(await samples(), "inference_coordinator_request_errors_total", { code: "client_closed" }) === 1, "client_closed counted");
      assert.equal(sampleValue(await samples(), "inference_coordinator_request_errors_total", { code: "invalid_request" }), undefined);
      assert.equal(sampleValue(await samples(), "inference_coordinator_http_requests_total", { route: "/coordinator/infer", method: "POST", status: "400" }), undefined);
      held.body.destroy();
    } finally {
      await f.stop();
    }
  });
});

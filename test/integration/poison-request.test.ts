import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";
import { waitForRoutable } from "../helpers/cluster.js";
import { postJson, streamSse } from "../helpers/http.js";
import { parsePromText, sampleValue, scrape } from "../helpers/prom-text.js";

/**
 * Containment of a query of death: three sim workers that each die (SIGKILL) on a prompt carrying
 * MARK. A request that killed two workers is answered 502 request_crashed_worker at once, the
 * third worker never sees it, and the same request sent again is refused without touching a worker.
 */
const MARK = "POISON-7f3a";
const FAST = ["--engine", "sim", "--sim-itl-ms", "2", "--sim-itl-per-sequence-ms", "0", "--sim-crash-on-prompt", MARK];

async function fleet(extra: string[] = []) {
  const c = await startCoordinatorProc({ STREAM_STALL_TIMEOUT_MS: "2000", FIRST_TOKEN_TIMEOUT_MS: "2000" });
  const workers: Served[] = [];
  for (const id of ["w1", "w2", "w3"]) workers.push(await startWorkerProc(c.url, { id, args: [...FAST, ...extra] }));
  await waitForRoutable(c.url, 3);
  return { c, workers, stop: () => Promise.all([c.proc.stop(), ...workers.map((w) => w.proc.stop())]) };
}

async function poisonMetrics(url: string) {
  const samples = parsePromText((await scrape(url)).text);
  return {
    requests: sampleValue(samples, "inference_coordinator_poison_requests_total"),
    refusals: sampleValue(samples, "inference_coordinator_poison_refusals_total"),
  };
}

describe("a request that crashes workers", () => {
  it("kills two workers at most, gets 502 request_crashed_worker, and is refused at once when sent again", async () => {
    const f = await fleet();
    try {
      const body = { prompt: `Once upon a time ${MARK}`, model: "m", max_tokens: 8 };
      const t0 = Date.now();
      const first = await postJson(`${f.c.url}/coordinator/infer`, body);
      const firstMs = Date.now() - t0;
      assert.equal(first.status, 502, JSON.stringify(first.body));
      assert.equal(first.body.reason, "request_crashed_worker");
      assert.match(first.body.fingerprint, /^[0-9a-f]{64}$/);
      await Promise.all([f.workers[0]!.proc.exited, f.workers[1]!.proc.exited]);
      assert.ok(f.workers[2]!.proc.alive, "the third worker never got the request");
      const poison = await f.c.proc.waitForLog((l) => l.msg === "request.poison", 2000, "request.poison");
      assert.equal(poison.level, "error");
      assert.equal(poison.fingerprint, first.body.fingerprint);

      const t1 = Date.now();
      const again = await postJson(`${f.c.url}/coordinator/infer`, { ...body, max_tokens: 16 });
      const againMs = Date.now() - t1;
      assert.equal(again.status, 502);
      assert.equal(again.body.reason, "request_crashed_worker");
      assert.equal(again.body.fingerprint, first.body.fingerprint);
      assert.ok(f.workers[2]!.proc.alive, "the refusal touched no worker");
      assert.ok(againMs < 1000, `refused in ${againMs} ms`);
      assert.deepEqual(await poisonMetrics(f.c.url), { requests: 1, refusals: 1 });

      // Other requests still go to the worker left.
      const ok = await streamSse(`${f.c.url}/coordinator/infer`, { prompt: "Once upon a time", model: "m", max_tokens: 4 });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers["x-worker-id"], "w3");
      console.log(`# poison prompt: 502 request_crashed_worker in ${firstMs} ms (2 of 3 workers died); resend refused in ${againMs} ms`);
    } finally {
      await f.stop();
    }
  });

  it("is contained the same way on the OpenAI API (chat messages)", async () => {
    const f = await fleet();
    try {
      const body = { model: "sim", max_tokens: 8, messages: [{ role: "user", content: `Tell me ${MARK}` }] };
      const first = await postJson(`${f.c.url}/v1/chat/completions`, body);
      assert.equal(first.status, 502, JSON.stringify(first.body));
      assert.equal(first.body.error.code, "request_crashed_worker");
      assert.ok(f.workers[2]!.proc.alive);
      const again = await postJson(`${f.c.url}/v1/chat/completions`, body);
      assert.equal(again.status, 502);
      assert.equal(again.body.error.code, "request_crashed_worker");
      assert.ok(f.workers[2]!.proc.alive);
      assert.doesNotMatch(JSON.stringify(first.body), /socket|other side closed|ECONN/i, "no raw upstream text for the client");
    } finally {
      await f.stop();
    }
  });

  it("counts workers dying mid-stream: the failover's death ends the stream with request_crashed_worker", async () => {
    const f = await fleet(["--sim-crash-on-prompt-after-tokens", "5"]);
    try {
      const body = { prompt: `A tale ${MARK}`, model: "m", max_tokens: 40 };
      const t0 = Date.now();
      const r = await streamSse(`${f.c.url}/coordinator/infer`, body);
      const ms = Date.now() - t0;
      assert.equal(r.status, 200);
      const errors = r.events.filter((e) => e.error !== undefined);
      assert.equal(errors.length, 1, r.raw);
      assert.equal(errors[0].error.code, "request_crashed_worker", r.raw);
      await Promise.all([f.workers[0]!.proc.exited, f.workers[1]!.proc.exited]);
      assert.ok(f.workers[2]!.proc.alive, "the third worker never got the request");
      const again = await postJson(`${f.c.url}/coordinator/infer`, body);
      assert.equal(again.status, 502);
      assert.equal(again.body.reason, "request_crashed_worker");
      assert.ok(f.workers[2]!.proc.alive);
      console.log(`# poison prompt mid-stream: error event request_crashed_worker after ${ms} ms (2 of 3 workers died); resend 502`);
    } finally {
      await f.stop();
    }
  });
});

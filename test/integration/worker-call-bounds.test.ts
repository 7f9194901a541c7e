import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCoordinatorProc } from "../helpers/processes.js";
import { waitForRoutable } from "../helpers/cluster.js";
import { postJson } from "../helpers/http.js";
import { startFakeWorker } from "../helpers/fake-worker.js";

/**
 * Coordinator → worker calls outside a stream are bounded in time and size, and a worker's
 * refusal of the coordinator's credentials is the fleet's fault: each against a misbehaving
 * third-party worker (a fake: our own worker never behaves so).
 */
const PREFILL_TIMEOUT_MS = 600;

async function withFake(handle: Parameters<typeof startFakeWorker>[2], run: (url: string, coordinatorLogs: () => any[]) => Promise<void>) {
  const c = await startCoordinatorProc({ PREFILL_TIMEOUT_MS: String(PREFILL_TIMEOUT_MS), PREFILL_RETRIES: "0" });
  const fake = await startFakeWorker(c.url, "fake-1", handle);
  try {
    await waitForRoutable(c.url, 1);
    await run(c.url, () => c.proc.logs);
  } finally {
    await fake.stop();
    await c.proc.stop();
  }
}

describe("calls to a worker outside a stream", () => {
  it("a worker that sends its prefill headers and then stalls does not hold the request past PREFILL_TIMEOUT_MS", async () => {
    await withFake((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"status":'); // …and nothing more
    }, async (url) => {
      const t0 = Date.now();
      const r = await postJson(`${url}/coordinator/infer`, { prompt: "hello", model: "fake", max_tokens: 4 });
      const ms = Date.now() - t0;
      assert.equal(r.status, 502, JSON.stringify(r.body));
      assert.equal(r.body.reason, "worker_failed");
      assert.ok(ms < PREFILL_TIMEOUT_MS + 1500, `answered in ${ms} ms`);
      assert.ok(ms >= PREFILL_TIMEOUT_MS - 50, `answered in ${ms} ms`);
    });
  });

  it("a prefill answer larger than the bound is a worker fault, not read to its end", async () => {
    await withFake((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`{"pad":"${"x".repeat(3 * 1024 * 1024)}"}`);
    }, async (url) => {
      const r = await postJson(`${url}/coordinator/infer`, { prompt: "hello", model: "fake", max_tokens: 4 });
      assert.equal(r.status, 502);
      assert.equal(r.body.reason, "worker_failed");
    });
  });

  it("a worker's 401 is the fleet's fault: the client gets 502 without the worker's text, the log an error", async () => {
    await withFake((_req, res) => {
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "SECRET-DETAIL bad cluster token", reason: "unauthorized" }));
    }, async (url, logs) => {
      const r = await postJson(`${url}/coordinator/infer`, { prompt: "hello", model: "fake", max_tokens: 4 });
      assert.equal(r.status, 502, JSON.stringify(r.body));
      assert.equal(r.body.reason, "worker_failed");
      assert.doesNotMatch(JSON.stringify(r.body), /SECRET-DETAIL|cluster token/);
      const oai = await postJson(`${url}/v1/completions`, { prompt: "hello", model: "fake", max_tokens: 4 });
      assert.equal(oai.status, 502);
      assert.notEqual(oai.body.error.type, "authentication_error");
      const line = logs().find((l) => l.msg === "worker.credentials_refused");
      assert.ok(line, "logged");
      assert.equal(line.level, "error");
    });
  });

  it("a 5xx's raw text stays in the log", async () => {
    await withFake((_req, res) => {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "INTERNAL-DETAIL at /srv/secret/path.js:12", reason: "internal" }));
    }, async (url) => {
      const r = await postJson(`${url}/coordinator/infer`, { prompt: "hello", model: "fake", max_tokens: 4 });
      assert.equal(r.status, 502);
      assert.doesNotMatch(JSON.stringify(r.body), /INTERNAL-DETAIL|secret/);
    });
  });

  it("a 4xx with a code the project does not know is the client's 400 without the worker's text", async () => {
    await withFake((_req, res) => {
      res.writeHead(422, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "UPSTREAM-DETAIL stack at x.js:1", reason: "weird_code" }));
    }, async (url) => {
      const r = await postJson(`${url}/coordinator/infer`, { prompt: "hello", model: "fake", max_tokens: 4 });
      assert.equal(r.status, 400);
      assert.equal(r.body.reason, "invalid_request");
      assert.doesNotMatch(JSON.stringify(r.body), /UPSTREAM-DETAIL/);
    });
  });

  it("a worker's session_kv_limit (its count beat the coordinator's estimate) is 413 at once, not a wait for capacity", async () => {
    await withFake((_req, res) => {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: "session needs 9000000 KV bytes; the per-session limit is 8000000", reason: "session_kv_limit" }));
    }, async (url) => {
      const t0 = Date.now();
      const r = await postJson(`${url}/coordinator/infer`, { prompt: "hello", model: "fake", max_tokens: 4 });
      const ms = Date.now() - t0;
      assert.equal(r.status, 413, JSON.stringify(r.body));
      assert.equal(r.body.reason, "session_kv_limit_exceeded");
      assert.match(r.body.error, /8000000/);
      assert.ok(ms < 1000, `answered in ${ms} ms`);
    });
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCluster, type Cluster } from "../helpers/cluster.js";
import { postJson, streamSse } from "../helpers/http.js";

/**
 * The coordinator's request loggers bind their fields lazily (no pino child per request); its log
 * output still carries, on every line of a request, the request id and, once known, the worker and
 * session ids, read here from the real process's stdout.
 */
describe("a request's log lines carry its ids", () => {
  let cl: Cluster;
  before(async () => {
    cl = await startCluster({ workers: 1, coordinatorEnv: { LOG_LEVEL: "debug" }, workerArgs: ["--engine", "sim", "--sim-itl-ms", "2", "--sim-itl-per-sequence-ms", "0", "--context-size", "256"] });
  });
  after(async () => cl?.stop());

  it("the routing and stream-end lines name the request, its worker and its session", async () => {
    const r = await streamSse(`${cl.url}/coordinator/infer`, { prompt: "Hello there", model: "m", max_tokens: 4 }, { headers: { "x-request-id": "fields-1" } });
    assert.equal(r.status, 200);
    const proc = cl.coordinator.proc;
    const end = await proc.waitForLog((l) => l.msg === "stream.end" && l.request_id === "fields-1", 5000, "stream.end of fields-1");
    const select = await proc.waitForLog((l) => l.msg === "scheduler.select" && l.request_id === "fields-1", 5000, "scheduler.select of fields-1");
    const prefill = await proc.waitForLog((l) => l.msg === "prefill.done" && l.request_id === "fields-1", 5000, "prefill.done of fields-1");
    assert.equal(end.worker_id, "w1");
    assert.equal(typeof end.session_id, "string");
    assert.equal(end.completion_tokens, 4);
    assert.equal(select.worker_id, "w1");
    assert.equal(prefill.worker_id, "w1");
    assert.equal(prefill.session_id, end.session_id);
  });

  it("a refusal's line names its request", async () => {
    const r = await postJson(`${cl.url}/coordinator/infer`, { prompt: "x", model: "m", max_tokens: 5000 }, { "x-request-id": "fields-2" });
    assert.equal(r.status, 400);
    const line = await cl.coordinator.proc.waitForLog((l) => l.msg === "admission.never_fits", 5000, "the refusal's line");
    assert.equal(line.request_id, "fields-2");
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { request } from "undici";
import { getJson, postJson } from "../helpers/http.js";
import { startCoordinatorProc, type Served } from "../helpers/processes.js";

describe("the coordinator's answers to bad input", () => {
  let c: Served;
  before(async () => {
    c = await startCoordinatorProc({ MAX_BODY_BYTES: "4096", MAX_TOKENS_LIMIT: "100000" });
  });
  after(async () => c?.proc.stop());

  const cases: [string, unknown, number, string, string?][] = [
    ["non-JSON", "{not json", 400, "invalid_json"],
    ["a JSON array", "[1,2]", 400, "invalid_request"],
    ["an empty body", "", 400, "invalid_request"],
    ["a missing prompt", { model: "m", max_tokens: 5 }, 400, "missing_field", "prompt"],
    ["a missing model", { prompt: "p", max_tokens: 5 }, 400, "missing_field", "model"],
    ["a missing max_tokens", { prompt: "p", model: "m" }, 400, "missing_field", "max_tokens"],
    ["an empty prompt", { prompt: "", model: "m", max_tokens: 5 }, 400, "invalid_field", "prompt"],
    ["a numeric prompt", { prompt: 42, model: "m", max_tokens: 5 }, 400, "invalid_field", "prompt"],
    ["max_tokens 0", { prompt: "p", model: "m", max_tokens: 0 }, 400, "invalid_field", "max_tokens"],
    ["max_tokens -1", { prompt: "p", model: "m", max_tokens: -1 }, 400, "invalid_field", "max_tokens"],
    ["an absurd max_tokens", { prompt: "p", model: "m", max_tokens: 1e15 }, 400, "invalid_field", "max_tokens"],
    ["max_tokens as text", { prompt: "p", model: "m", max_tokens: "ten" }, 400, "invalid_field", "max_tokens"],
    ["a body over the limit", { prompt: "x".repeat(5000), model: "m", max_tokens: 5 }, 413, "body_too_large"],
    ["broken UTF-8 in the prompt", Buffer.concat([Buffer.from('{"prompt":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('","max_tokens":1}')]), 400, "missing_field", "model"],
  ];
  for (const [name, body, status, reason, param] of cases) {
    it(`answers ${status} ${reason} to ${name}`, async () => {
      const res = await postJson(`${c.url}/coordinator/infer`, body);
      assert.equal(res.status, status);
      assert.equal(res.body.reason, reason);
      if (param) assert.equal(res.body.param, param);
      assert.match(res.body.request_id, /^[0-9a-f-]{36}$/);
    });
  }

  it("answers an unknown path with 404 and a wrong method with 405", async () => {
    assert.equal((await getJson(`${c.url}/nope`)).status, 404);
    const res = await getJson(`${c.url}/coordinator/infer`);
    assert.equal(res.status, 405);
    assert.equal(res.body.reason, "method_not_allowed");
  });

  it("echoes a client's x-request-id", async () => {
    const res = await postJson(`${c.url}/coordinator/infer`, {}, { "x-request-id": "client-req-42" });
    assert.equal(res.body.request_id, "client-req-42");
    assert.equal(res.headers["x-request-id"], "client-req-42");
  });

  it("survives malformed HTTP and a client that sends half a body", async () => {
    await new Promise<void>((resolve) => {
      const s = connect(Number(new URL(c.url).port), "127.0.0.1", () => s.end("GARBAGE / HTTP/9.9\r\n\r\n"));
      s.on("close", () => resolve());
      s.on("error", () => resolve());
      s.resume();
    });
    await new Promise<void>((resolve) => {
      const s = connect(Number(new URL(c.url).port), "127.0.0.1", () => {
        s.write("POST /coordinator/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"prompt\":");
        setImmediate(() => s.destroy());
      });
      s.on("close", () => resolve());
      s.on("error", () => resolve());
    });
    const health = await getJson(`${c.url}/coordinator/health`);
    assert.equal(health.status, 200);
    assert.equal(health.body.active_sessions, 0);
    assert.equal(c.proc.alive, true);
  });

  it("rejects heartbeats that are malformed or carry a non-http worker_url", async () => {
    const bad = [
      { worker_id: "w", worker_url: "javascript:alert(1)", health: { active_sessions: 0, kv_cache_bytes: 0 } },
      { worker_id: "w x", worker_url: "http://127.0.0.1:1", health: { active_sessions: 0, kv_cache_bytes: 0 } },
      { worker_id: "w", worker_url: "http://127.0.0.1:1" },
    ];
    for (const b of bad) assert.equal((await postJson(`${c.url}/coordinator/health/heartbeat`, b)).status, 400);
    assert.equal((await getJson(`${c.url}/coordinator/health/workers`)).body.workers.length, 0);
  });

  it("keeps serving health while answering many bad requests at once", async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        request(`${c.url}/coordinator/infer`, { method: "POST", body: i % 2 ? "{" : JSON.stringify({ prompt: i }) }).then(async (r) => {
          await r.body.dump();
          return r.statusCode;
        }),
      ),
    );
    assert.ok(results.every((s) => s === 400));
    assert.equal((await getJson(`${c.url}/coordinator/health`)).status, 200);
  });
});

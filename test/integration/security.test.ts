import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { request } from "undici";
import { waitForRoutable } from "../helpers/cluster.js";
import { getJson, postJson, streamSse, waitFor } from "../helpers/http.js";
import { startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";

const KEY = "sk-test-0123456789abcdef";
const TOKEN = "cluster-token-0123456789";
const ADMIN = "admin-key-0123456789abcdef";

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined };
}

describe("API keys, the cluster token and rate limits", () => {
  let c: Served;
  let w: Served;
  before(async () => {
    c = await startCoordinatorProc({ API_KEYS: `other-key-0000000000,${KEY}`, ADMIN_API_KEYS: ADMIN, CLUSTER_TOKEN: TOKEN, RATE_LIMIT_RPM: "4" });
    w = await startWorkerProc(c.url, { id: "w1", env: { CLUSTER_TOKEN: TOKEN } });
    await waitForRoutable(c.url, 1);
  });
  after(async () => Promise.all([w?.proc.stop(), c?.proc.stop()]));

  it("refuses client endpoints without a valid key, and serves with one", async () => {
    const body = { prompt: "Hello", model: "any", max_tokens: 4 };
    const none = await postJson(`${c.url}/coordinator/infer`, body);
    assert.equal(none.status, 401);
    assert.equal(none.body.reason, "unauthorized");
    const wrong = await postJson(`${c.url}/coordinator/infer`, body, { authorization: "Bearer sk-test-0123456789abcdeX" });
    assert.equal(wrong.status, 401);
    const ok = await streamSse(`${c.url}/coordinator/infer`, body, { headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(ok.status, 200);
    assert.equal((await get(`${c.url}/coordinator/health/workers`)).status, 401);
    assert.equal((await get(`${c.url}/coordinator/health`)).status, 200, "liveness stays open for load balancers");
  });

  it("never writes a secret to the logs", () => {
    const all = JSON.stringify(c.proc.logs) + JSON.stringify(w.proc.logs) + c.proc.stderr.join("") + w.proc.stderr.join("");
    assert.ok(!all.includes(KEY));
    assert.ok(!all.includes(TOKEN));
    assert.ok(!all.includes(ADMIN));
  });

  it("lets no rogue process register as a worker or drive one", async () => {
    const hb = { worker_id: "rogue", worker_url: "http://127.0.0.1:9", health: { alive: true, active_sessions: 0, kv_cache_bytes: 0 } };
    assert.equal((await postJson(`${c.url}/coordinator/health/heartbeat`, hb)).status, 401);
    assert.equal((await postJson(`${c.url}/coordinator/health/heartbeat`, hb, { authorization: `Bearer ${KEY}` })).status, 401, "a client key is not the cluster token");
    const workers = (await get(`${c.url}/coordinator/health/workers`, { authorization: `Bearer ${KEY}` })).body.workers as { worker_id: string }[];
    assert.deepEqual(workers.map((x) => x.worker_id), ["w1"]);
    const prefill = { session_id: randomUUID(), prompt: "x", max_tokens: 1 };
    assert.equal((await postJson(`${w.url}/worker/prefill`, prefill)).status, 401);
    assert.equal((await postJson(`${w.url}/worker/generate`, prefill)).status, 401);
    assert.equal((await get(`${w.url}/worker/health`)).status, 401);
    assert.equal((await get(`${w.url}/worker/health`, { authorization: `Bearer ${TOKEN}` })).status, 200);
  });

  it("answers 429 with Retry-After past the per-key request rate", async () => {
    const h = { authorization: `Bearer other-key-0000000000` };
    const statuses: number[] = [];
    let retryAfter: string | string[] | undefined;
    for (let i = 0; i < 6; i++) {
      const r = await postJson(`${c.url}/coordinator/infer`, { prompt: "Hi", model: "any", max_tokens: 1 }, h);
      statuses.push(r.status);
      if (r.status === 429) {
        retryAfter = r.headers["retry-after"];
        assert.equal(r.body.reason, "rate_limited");
      }
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429]);
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 15);
    await waitFor(async () => (await getJson(`${c.url}/coordinator/health`)).body.active_sessions === 0, "no session left");
  });

  it("keeps negative priorities, the prefix index and the routing log for operator keys (403 for a client key)", async () => {
    const client = { authorization: `Bearer ${KEY}` };
    const admin = { authorization: `Bearer ${ADMIN}` };
    const urgent = await postJson(`${c.url}/coordinator/infer`, { prompt: "Hi", model: "any", max_tokens: 1, priority: -1 }, client);
    assert.equal(urgent.status, 403);
    assert.equal(urgent.body.reason, "forbidden");
    const byHeader = await postJson(`${c.url}/v1/completions`, { prompt: "Hi", model: "any", max_tokens: 1 }, { ...client, "x-priority": "-3" });
    assert.equal(byHeader.status, 403);
    assert.equal(byHeader.body.error.code, "forbidden");
    const operator = await streamSse(`${c.url}/coordinator/infer`, { prompt: "Hi", model: "any", max_tokens: 1, priority: -1 }, { headers: admin });
    assert.equal(operator.status, 200, "an admin key is also a client key, with operator rights");
    for (const path of ["/coordinator/health/prefix-index", "/coordinator/health/routing"]) {
      assert.equal((await get(`${c.url}${path}`, client)).status, 403, path);
      assert.equal((await get(`${c.url}${path}`, admin)).status, 200, path);
    }
    await waitFor(async () => (await getJson(`${c.url}/coordinator/health`)).body.active_sessions === 0, "no session left");
  });

  it("lets only an operator's key or the cluster token drain a worker, and undrain puts it back", async () => {
    const drain = (h: Record<string, string>, id = "w1", verb = "drain") => postJson(`${c.url}/coordinator/workers/${id}/${verb}`, {}, h);
    assert.equal((await drain({})).status, 401);
    assert.equal((await drain({ authorization: "Bearer not-a-key-at-all" })).status, 401);
    const byClient = await drain({ authorization: `Bearer ${KEY}` });
    assert.equal(byClient.status, 403, "a client key may not drain");
    assert.equal(byClient.body.reason, "forbidden");
    assert.equal((await drain({ authorization: `Bearer ${ADMIN}` }, "nobody")).status, 404);
    const byToken = await drain({ authorization: `Bearer ${TOKEN}` });
    assert.equal(byToken.status, 200);
    assert.equal(byToken.body.draining, true);
    const byAdmin = await drain({ authorization: `Bearer ${ADMIN}` });
    assert.equal(byAdmin.status, 200, "draining twice is harmless");
    await waitFor(async () => (await getJson(`${c.url}/coordinator/health`)).body.workers.routable === 0, "the drained worker out of routing");
    assert.equal((await drain({ authorization: `Bearer ${KEY}` }, "w1", "undrain")).status, 403);
    const undrained = await drain({ authorization: `Bearer ${ADMIN}` }, "w1", "undrain");
    assert.equal(undrained.status, 200);
    assert.equal(undrained.body.draining, false);
    assert.equal((await getJson(`${c.url}/coordinator/health`)).body.workers.routable, 1, "routable at once");
    // The worker's own heartbeats agree (not overwritten back to draining by the next beat).
    await waitFor(async () => {
      const w = (await get(`${c.url}/coordinator/health/workers`, { authorization: `Bearer ${KEY}` })).body.workers[0];
      return w.last_heartbeat_ms_ago < 150 && w.draining === false && w.routable === true;
    }, "a fresh beat that says the worker takes sessions");
  });
});

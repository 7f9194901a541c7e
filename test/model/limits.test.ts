import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startCluster, workerHealth, type Cluster } from "../helpers/cluster.js";
import { getJson, postJson, streamSse, waitFor } from "../helpers/http.js";
import { STORIES_MODEL, missingModel, startCoordinatorProc } from "../helpers/processes.js";

const skip = missingModel(STORIES_MODEL);
const LONG = { logit_bias: { "1": -100, "2": -100 } };

/** Starts a stream that keeps running (BOS/EOS banned) and resolves once it is decoding. */
async function holdOne(cluster: Cluster, maxTokens = 1900) {
  const ac = new AbortController();
  const done = streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once upon a time", model: "m", max_tokens: maxTokens, ...LONG }, { signal: ac.signal }).catch(() => undefined);
  await waitFor(async () => (await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions >= 1, "a session held");
  return { release: async () => (ac.abort(), await done) };
}

/** Without the admission queue (QUEUE_SIZE=0) a coordinator at capacity answers 503 at once, as the seed. */
const NO_QUEUE = { QUEUE_SIZE: "0" };

describe("admission answers 503 with the right reason at each limit", { skip }, () => {
  it("no_workers when the fleet is empty", async () => {
    const c = await startCoordinatorProc();
    try {
      const res = await postJson(`${c.url}/coordinator/infer`, { prompt: "x", model: "m", max_tokens: 5 });
      assert.equal(res.status, 503);
      assert.equal(res.body.reason, "no_workers");
      assert.equal(typeof res.body.request_id, "string");
      assert.equal(res.headers["retry-after"], "1");
    } finally {
      await c.proc.stop();
    }
  });

  it("system_sessions_full at SYSTEM_MAX_SESSIONS", async () => {
    const cluster = await startCluster({ workers: 1, model: STORIES_MODEL, coordinatorEnv: { ...NO_QUEUE, SYSTEM_MAX_SESSIONS: "1" } });
    try {
      const held = await holdOne(cluster);
      const res = await postJson(`${cluster.url}/coordinator/infer`, { prompt: "x", model: "m", max_tokens: 5 });
      assert.equal(res.status, 503);
      assert.equal(res.body.reason, "system_sessions_full");
      await held.release();
    } finally {
      await cluster.stop();
    }
  });

  it("system_kv_cache_full at SYSTEM_MAX_KV_BYTES", async () => {
    // 640 bytes per token: 1,000 tokens reserve 640,000 bytes of a 1,000,000-byte system.
    const cluster = await startCluster({ workers: 1, model: STORIES_MODEL, coordinatorEnv: { ...NO_QUEUE, SYSTEM_MAX_KV_BYTES: "1000000" } });
    try {
      const held = await holdOne(cluster, 1000);
      const res = await postJson(`${cluster.url}/coordinator/infer`, { prompt: "x", model: "m", max_tokens: 1000 });
      assert.equal(res.status, 503);
      assert.equal(res.body.reason, "system_kv_cache_full");
      const small = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "x", model: "m", max_tokens: 10 });
      assert.equal(small.status, 200, "a request that fits is still admitted");
      await held.release();
    } finally {
      await cluster.stop();
    }
  });

  it("system_sessions_full when every worker holds WORKER_MAX_SESSIONS", async () => {
    const cluster = await startCluster({ workers: 1, model: STORIES_MODEL, coordinatorEnv: NO_QUEUE, workerEnv: { WORKER_MAX_SESSIONS: "1" } });
    try {
      const held = await holdOne(cluster);
      const res = await postJson(`${cluster.url}/coordinator/infer`, { prompt: "x", model: "m", max_tokens: 5 });
      assert.equal(res.status, 503);
      assert.equal(res.body.reason, "system_sessions_full");
      await held.release();
    } finally {
      await cluster.stop();
    }
  });
});

describe("a worker enforces its own limits and its API's rules", { skip }, () => {
  let cluster: Cluster;
  let w: string;
  before(async () => {
    cluster = await startCluster({
      workers: 1, model: STORIES_MODEL,
      workerEnv: { WORKER_MAX_SESSIONS: "2", WORKER_MAX_KV_BYTES: "600000", WORKER_MAX_SESSION_KV_BYTES: "400000" },
    });
    w = cluster.workers[0]!.url;
  });
  after(async () => cluster?.stop());

  const prefill = (body: Record<string, unknown>) => postJson(`${w}/worker/prefill`, { session_id: randomUUID(), prompt: "Once upon a time", ...body });

  it("answers prefill with prompt tokens and reserved KV bytes, then streams {token, seq}", async () => {
    const id = randomUUID();
    const p = await postJson(`${w}/worker/prefill`, { session_id: id, prompt: "Once upon a time", model: "tinyllama-1.1b", max_tokens: 5 });
    assert.equal(p.status, 200);
    assert.deepEqual(p.body, { status: "ok", prompt_tokens: 5, kv_cache_bytes: (5 + 5) * 640, cached_tokens: 0, worker_id: "w1", max_tokens: 5 });
    const again = await postJson(`${w}/worker/prefill`, { session_id: id, prompt: "x", max_tokens: 5 });
    assert.equal(again.status, 409);
    const d = await streamSse(`${w}/worker/decode`, { session_id: id, max_tokens: 3 });
    assert.equal(d.status, 200);
    assert.deepEqual(d.events.slice(0, 3).map((e) => e.seq), [0, 1, 2]);
    assert.deepEqual(d.last, { token: "", seq: 3, finished: true, reason: "length", prompt_tokens: 5, completion_tokens: 3 });
    assert.match(d.raw, /^data: \{"token":",","seq":0\}\n\n/);
    const gone = await postJson(`${w}/worker/decode`, { session_id: id });
    assert.equal(gone.status, 404, "a finished session is gone");
    assert.equal(gone.body.reason, "session_not_found");
  });

  it("answers 409 to a second decode of a running session", async () => {
    const id = randomUUID();
    assert.equal((await postJson(`${w}/worker/prefill`, { session_id: id, prompt: "Once", max_tokens: 400, sampling: LONG })).status, 200);
    const first = streamSse(`${w}/worker/decode`, { session_id: id });
    await waitFor(async () => (await workerHealth(w)).running === 1, "decoding");
    const second = await postJson(`${w}/worker/decode`, { session_id: id });
    assert.equal(second.status, 409);
    assert.equal(second.body.reason, "session_busy");
    assert.equal((await first).last.reason, "length");
  });

  it("refuses with 503 and a reason what its limits cannot hold, and 400 what its context cannot", async () => {
    // (prompt 5 + 700) × 640 = 451,200 > 400,000 per session
    const r1 = await prefill({ max_tokens: 700 });
    assert.equal(r1.status, 503);
    assert.equal(r1.body.reason, "session_kv_limit");
    // Two sessions of (5 + 500) × 640 = 323,200 each exceed the 600,000 total.
    const a = randomUUID();
    assert.equal((await prefill({ session_id: a, max_tokens: 500 })).status, 200);
    const r2 = await prefill({ max_tokens: 500 });
    assert.equal(r2.status, 503);
    assert.equal(r2.body.reason, "worker_kv_cache_full");
    const b = randomUUID();
    assert.equal((await prefill({ session_id: b, max_tokens: 5 })).status, 200);
    const r3 = await prefill({ max_tokens: 5 });
    assert.equal(r3.status, 503);
    assert.equal(r3.body.reason, "worker_sessions_full");
    assert.equal((await workerHealth(w)).kv_reserved_bytes, 323_200 + 10 * 640);
    // Cancel frees both; nothing is left behind.
    for (const id of [a, b]) assert.equal((await postJson(`${w}/worker/cancel`, { session_id: id })).status, 200);
    assert.equal((await postJson(`${w}/worker/cancel`, { session_id: a })).status, 404);
    const h = await waitFor(async () => {
      const x = await workerHealth(w);
      return x.active_sessions === 0 && x.slots.busy === 0 ? x : undefined;
    }, "worker empty");
    assert.equal(h.kv_reserved_bytes, 0);
    const tooLong = await prefill({ prompt: "Once upon a time ".repeat(1000), max_tokens: 5 });
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.reason, "prompt_too_long");
  });

  it("answers bad input with 4xx and a machine-readable reason", async () => {
    const cases: [unknown, number, string][] = [
      ["not json", 400, "invalid_json"],
      [{}, 400, "missing_field"],
      [{ session_id: "bad id!", prompt: "x", max_tokens: 1 }, 400, "invalid_field"],
      [{ session_id: randomUUID(), prompt: "", max_tokens: 1 }, 400, "invalid_field"],
      [{ session_id: randomUUID(), prompt: "x", max_tokens: 0 }, 400, "invalid_field"],
      [{ session_id: randomUUID(), prompt: "x", max_tokens: 1, sampling: { temperature: "hot" } }, 400, "invalid_field"],
      [{ session_id: randomUUID(), prompt: "x", max_tokens: 1, sampling: { grammar: "root ::= (" } }, 400, "invalid_grammar"],
    ];
    for (const [body, status, reason] of cases) {
      const r = await postJson(`${w}/worker/prefill`, body);
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(r.body.reason, reason, JSON.stringify(body));
    }
    const dec = await postJson(`${w}/worker/decode`, { session_id: randomUUID() });
    assert.equal(dec.status, 404);
    const get = await getJson(`${w}/worker/nothing`);
    assert.equal(get.status, 404);
  });
});

describe("the idle-session sweep", { skip }, () => {
  it("frees a prefilled session that is never decoded once SESSION_TTL_MS passes", async () => {
    const cluster = await startCluster({ workers: 1, model: STORIES_MODEL, workerEnv: { SESSION_TTL_MS: "300" } });
    try {
      const w = cluster.workers[0]!;
      const id = randomUUID();
      assert.equal((await postJson(`${w.url}/worker/prefill`, { session_id: id, prompt: "Once", max_tokens: 5 })).status, 200);
      assert.equal((await workerHealth(w.url)).active_sessions, 1);
      await waitFor(async () => (await workerHealth(w.url)).active_sessions === 0, "session swept", 5000);
      await w.proc.waitForLog((l) => l.msg === "session.end" && l.reason === "ttl", 1000, "session.end ttl");
      assert.equal((await postJson(`${w.url}/worker/decode`, { session_id: id })).status, 404);
    } finally {
      await cluster.stop();
    }
  });
});

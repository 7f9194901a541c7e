import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startCluster, workerHealth, type Cluster } from "../helpers/cluster.js";
import { postJson, streamSse, waitFor } from "../helpers/http.js";
import { STORIES_MODEL, missingModel } from "../helpers/processes.js";

/**
 * A worker keeps a conversation's KV between turns (worker API `conversation_id`): kept sequences
 * are idle in health, give way to new work when a slot or the KV budget is needed (least recently
 * used first), and expire after the idle TTL.
 */
const skip = missingModel(STORIES_MODEL);
const NO_END = { temperature: 0, logit_bias: { "1": -100, "2": -100 } };
/** stories260K: 640 KV bytes per token. */
const BYTES_PER_TOKEN = 640;

describe("conversations kept between turns on a worker", { skip }, () => {
  let cluster: Cluster;
  let w: string;
  before(async () => {
    // Two slots; a KV budget of 937 tokens.
    cluster = await startCluster({ workers: 1, model: STORIES_MODEL, workerEnv: { PARALLEL: "2", WORKER_MAX_KV_BYTES: "600000" } });
    w = cluster.workers[0]!.url;
  });
  after(async () => cluster?.stop());

  const logs = () => cluster.workers[0]!.proc.logs;

  async function turn(conversation: string | undefined, messages: { role: string; content: string }[], maxTokens = 12) {
    const id = randomUUID();
    const p = await postJson(`${w}/worker/prefill`, {
      session_id: id, messages, max_tokens: maxTokens, sampling: NO_END, ...(conversation ? { conversation_id: conversation } : {}),
    });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    const d = await streamSse(`${w}/worker/decode`, { session_id: id });
    assert.equal(d.last.reason, "length");
    return { prefill: p.body, text: d.text };
  }

  it("keeps a finished turn's KV, idle, and the next turn evaluates only its new tokens", async () => {
    const messages = [{ role: "user", content: "Tell me about a cat." }];
    const t1 = await turn("a", messages);
    const h = await workerHealth(w);
    assert.equal(h.kept_sessions, 1);
    assert.equal(h.kept_kv_bytes, (t1.prefill.prompt_tokens + 12) * BYTES_PER_TOKEN);
    assert.equal(h.active_sessions, 0);
    assert.equal(h.slots.busy, 0);
    assert.equal(h.kv_reserved_bytes, 0);
    assert.equal(h.kv_cache_bytes, 0);
    messages.push({ role: "assistant", content: t1.text }, { role: "user", content: "And then?" });
    const t2 = await turn("a", messages);
    assert.ok(t2.prefill.cached_tokens >= t1.prefill.prompt_tokens - 1, `cached ${t2.prefill.cached_tokens}`);
    assert.ok(t2.prefill.prompt_tokens > t1.prefill.prompt_tokens);
    assert.equal((await workerHealth(w)).kept_sessions, 1, "one kept sequence per conversation");
  });

  it("gives a kept slot, least recently used first, to new work when no free slot holds nothing", async () => {
    await turn("b", [{ role: "user", content: "A dog?" }]);
    assert.equal((await workerHealth(w)).kept_sessions, 2, "both slots keep a conversation");
    await turn(undefined, [{ role: "user", content: "A bird?" }]);
    const evicted = logs().filter((l) => l.msg === "conversation.evicted");
    assert.deepEqual(evicted.map((l) => [l.conversation_id, l.why]), [["a", "slot"]]);
    assert.equal((await workerHealth(w)).kept_sessions, 1);
  });

  it("gives kept KV to a reservation that needs the budget, and refuses nothing for it", async () => {
    const id = randomUUID();
    // (5 + 920) tokens × 640 = 592,000 bytes: with b's kept KV it exceeds the 600,000 budget.
    const p = await postJson(`${w}/worker/prefill`, { session_id: id, prompt: "Once upon a time", max_tokens: 920 });
    assert.equal(p.status, 200);
    assert.deepEqual(logs().filter((l) => l.msg === "conversation.evicted").map((l) => [l.conversation_id, l.why]), [["a", "slot"], ["b", "kv_budget"]]);
    assert.equal((await postJson(`${w}/worker/cancel`, { session_id: id })).status, 200);
    const h = await waitFor(async () => {
      const x = await workerHealth(w);
      return x.active_sessions === 0 && x.slots.busy === 0 ? x : undefined;
    }, "idle");
    assert.equal(h.kept_sessions, 0);
    assert.equal(h.kv_reserved_bytes, 0);
  });

  it("does not keep a turn that was cancelled", async () => {
    const id = randomUUID();
    await postJson(`${w}/worker/prefill`, { session_id: id, messages: [{ role: "user", content: "hi" }], max_tokens: 5, conversation_id: "c" });
    assert.equal((await postJson(`${w}/worker/cancel`, { session_id: id })).status, 200);
    const end = await cluster.workers[0]!.proc.waitForLog((l) => l.msg === "session.end" && l.session_id === id, 2000);
    assert.equal(end.kept, false);
    assert.equal((await workerHealth(w)).kept_sessions, 0);
  });
});

describe("kept conversations and the idle TTL", { skip }, () => {
  it("expires a kept conversation after SESSION_TTL_MS, and the seed API keeps one by x-session-id too", async () => {
    const cluster = await startCluster({ workers: 1, model: STORIES_MODEL, workerEnv: { SESSION_TTL_MS: "400" } });
    try {
      const res = await streamSse(`${cluster.url}/coordinator/infer`, { prompt: "Once upon a time", model: "m", max_tokens: 4 }, { headers: { "x-session-id": "seed-conv" } });
      assert.equal(res.status, 200);
      const w = cluster.workers[0]!;
      const start = await w.proc.waitForLog((l) => l.msg === "session.end" && l.conversation_id === "seed-conv", 2000);
      assert.equal(start.kept, true);
      await w.proc.waitForLog((l) => l.msg === "conversation.evicted" && l.why === "ttl", 5000, "ttl eviction");
      assert.equal((await workerHealth(w.url)).kept_sessions, 0);
    } finally {
      await cluster.stop();
    }
  });
});

import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { workerHealth } from "../helpers/cluster.js";
import { getJson, postJson, streamSse } from "../helpers/http.js";
import { STORIES_MODEL, missingModel, startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";
import { loadNativeBinding } from "../../src/engine/native-binding.js";

/**
 * A worker with one slot and KV tiers: a conversation pushed out of the slot by another is saved
 * to a tier, and its next turn restores it (cached_tokens counts the restored tokens) and answers
 * exactly what a cold prefill of the same messages answers. The disk tier survives a restart.
 */
const skip = missingModel(STORIES_MODEL) ?? (loadNativeBinding().ok ? undefined : "the native engine is not built");
const NO_END = { temperature: 0, logit_bias: { "1": -100, "2": -100 } };
const LONG = "Tom and his friend Sue went to the park to play with a big red ball. They ran and jumped and laughed all day. ";

describe("KV tiers on a worker", { skip }, () => {
  let coordinator: Served;
  const workers: Served[] = [];
  const dirs: string[] = [];
  before(async () => {
    coordinator = await startCoordinatorProc();
  });
  after(async () => {
    await Promise.all([...workers.map((w) => w.proc.stop()), coordinator?.proc.stop()]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function worker(env: Record<string, string>): Promise<Served> {
    const w = await startWorkerProc(coordinator.url, { model: STORIES_MODEL, env: { PARALLEL: "1", CONTEXT_SIZE: "1024", ...env } });
    workers.push(w);
    return w;
  }

  async function turn(url: string, conversation: string, messages: { role: string; content: string }[]) {
    const id = randomUUID();
    const p = await postJson(`${url}/worker/prefill`, { session_id: id, messages, max_tokens: 16, sampling: NO_END, conversation_id: conversation });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    const d = await streamSse(`${url}/worker/decode`, { session_id: id });
    return { prefill: p.body, text: d.text };
  }

  const first = (who: string) => [{ role: "user", content: `${LONG.repeat(3)}What did ${who} do next?` }];
  const second = (who: string, answer: string) => [...first(who), { role: "assistant", content: answer }, { role: "user", content: "And then?" }];

  it("a conversation evicted from its slot is restored from the host tier and answers as a cold prefill does", async () => {
    const w = await worker({ KV_HOST_BYTES: "16MiB" });
    const ready = w.proc.logs.find((l) => l.msg === "kv_tier.ready");
    assert.ok(ready !== undefined, "tiers on after the calibration");
    const a1 = await turn(w.url, "a", first("Tom"));
    await turn(w.url, "b", first("Sue")); // takes the only slot: a goes to the host tier
    const h = await workerHealth(w.url);
    assert.equal(h.kv_tiers.host_entries, 1);
    assert.ok(h.kv_tiers.host_bytes > 0 && h.kv_tiers.host_bytes <= h.kv_tiers.host_limit_bytes);
    const listing = (await getJson(`${w.url}/worker/cache`)).body;
    assert.deepEqual(listing.tiers.map((e: { conversation_id: string; tier: string }) => [e.conversation_id, e.tier]), [["a", "host"]]);
    const a2 = await turn(w.url, "a", second("Tom", a1.text));
    assert.equal(a2.prefill.kv_tier, "host");
    assert.ok(a2.prefill.cached_tokens >= a1.prefill.prompt_tokens, `cached ${a2.prefill.cached_tokens} of ${a2.prefill.prompt_tokens}`);
    // The same messages prefilled cold (another conversation) give the same greedy answer.
    const cold = await turn(w.url, "c", second("Tom", a1.text));
    assert.equal(cold.prefill.kv_tier, undefined);
    assert.equal(a2.text, cold.text);
    const after = await workerHealth(w.url);
    assert.equal(after.kv_tiers.restored_host, 1);
    // Tier bytes are not slot KV: nothing reserved, nothing held while idle.
    assert.equal(after.kv_reserved_bytes, 0);
  });

  it("the disk tier survives a worker restart and restores the conversation", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kv-disk-worker-"));
    dirs.push(dir);
    const env = { KV_HOST_BYTES: "0", KV_DISK_DIR: dir, KV_DISK_BYTES: "64MiB" };
    const w1 = await worker(env);
    const a1 = await turn(w1.url, "d", first("Tom"));
    await turn(w1.url, "e", first("Sue"));
    assert.equal((await workerHealth(w1.url)).kv_tiers.disk_entries, 1);
    // A drain saves the conversation still in the slot too.
    await w1.proc.stop();
    assert.equal(readdirSync(dir).filter((n) => n.endsWith(".kvs")).length, 2);
    const w2 = await worker(env);
    assert.equal((await workerHealth(w2.url)).kv_tiers.disk_entries, 2, "index rebuilt from the folder");
    const d2 = await turn(w2.url, "d", second("Tom", a1.text));
    assert.equal(d2.prefill.kv_tier, "disk");
    assert.ok(d2.prefill.cached_tokens >= a1.prefill.prompt_tokens);
    const cold = await turn(w2.url, "f", second("Tom", a1.text));
    assert.equal(d2.text, cold.text);
  });

  it("a drain hands a conversation's KV bytes to the adopter, which restores them instead of prefilling; tampered bytes are prefilled", async () => {
    const holder = await worker({});
    const adopter = await worker({});
    const t1 = await turn(holder.url, "g", first("Tom"));
    const listing = (await postJson(`${holder.url}/worker/drain`, {})).body;
    const entry = listing.entries.find((e: { conversation_id: string }) => e.conversation_id === "g");
    assert.ok(typeof entry?.kv_state === "string" && entry.kv_state.length > 0, "the listing carries the KV");
    // Tampered: one base64 character of the state changed; the checksum refuses it and the adopter prefills.
    const bad = entry.kv_state.slice(0, -8) + (entry.kv_state.at(-8) === "A" ? "B" : "A") + entry.kv_state.slice(-7);
    const refused = await postJson(`${adopter.url}/worker/adopt`, { ...entry, conversation_id: "g-copy", kv_state: bad, model: listing.model });
    assert.equal(refused.status, 200, JSON.stringify(refused.body));
    assert.equal(refused.body.kv_restored, false);
    const adopted = await postJson(`${adopter.url}/worker/adopt`, { ...entry, model: listing.model });
    assert.equal(adopted.status, 200, JSON.stringify(adopted.body));
    assert.equal(adopted.body.kv_restored, true);
    const t2 = await turn(adopter.url, "g", second("Tom", t1.text));
    assert.ok(t2.prefill.cached_tokens >= t1.prefill.prompt_tokens, `cached ${t2.prefill.cached_tokens}`);
    const cold = await turn(adopter.url, "h", second("Tom", t1.text));
    assert.equal(t2.text, cold.text);
  });

  it("a sequence adopted into a slot that kept another conversation saves that conversation to the host tier first", async () => {
    const holder = await worker({});
    const adopter = await worker({ KV_HOST_BYTES: "16MiB" });
    await turn(holder.url, "moving", first("Tom"));
    const k1 = await turn(adopter.url, "kept", first("Sue"));
    const listing = (await postJson(`${holder.url}/worker/drain`, {})).body;
    const entry = listing.entries.find((e: { conversation_id: string }) => e.conversation_id === "moving");
    const adopted = await postJson(`${adopter.url}/worker/adopt`, { ...entry, model: listing.model });
    assert.equal(adopted.status, 200, JSON.stringify(adopted.body));
    const tiers = (await getJson(`${adopter.url}/worker/cache`)).body.tiers;
    assert.deepEqual(tiers.map((e: { conversation_id: string; tier: string }) => [e.conversation_id, e.tier]), [["kept", "host"]]);
    const k2 = await turn(adopter.url, "kept", second("Sue", k1.text));
    assert.equal(k2.prefill.kv_tier, "host");
    assert.ok(k2.prefill.cached_tokens >= k1.prefill.prompt_tokens, `cached ${k2.prefill.cached_tokens}`);
  });
});

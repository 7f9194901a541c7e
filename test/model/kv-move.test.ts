import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCluster, workerHealth } from "../helpers/cluster.js";
import { getJson, postJson, waitFor } from "../helpers/http.js";
import { STORIES_MODEL, missingModel } from "../helpers/processes.js";

/**
 * A conversation whose worker is saturated moves: on stories260K, two workers of one session each
 * (KV tiers on, so each publishes its measured prefill and restore costs). The worker that holds a
 * conversation is filled by another session; the conversation's next turn goes to the other
 * worker, its KV moved there over the worker API (from the kept slot, or from the host tier when
 * the other session's slot took the conversation's), and the turn reuses it: cached tokens, the
 * move named in x-route-decision, and the same greedy answer as a twin conversation never moved.
 */
const skip = missingModel(STORIES_MODEL) ?? (process.platform !== "linux" ? "the native engine is built on Linux only" : undefined);
const SYSTEM = "You are a storyteller. Tell short, happy stories about animals in the forest, with a friendly tone. ";
type Message = { role: string; content: string };

async function turn(url: string, conversation: string, messages: Message[]) {
  const r = await postJson(`${url}/v1/chat/completions`, { model: "stories260K", messages, max_tokens: 24, temperature: 0 }, { "x-session-id": conversation });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return {
    worker: String(r.headers["x-worker-id"]), route: String(r.headers["x-route-decision"]),
    text: r.body.choices[0].message.content as string, cached: r.body.usage.prompt_tokens_details.cached_tokens as number,
  };
}

describe("a conversation whose worker is saturated moves its KV", { skip }, () => {
  for (const [parallel, source] of [["2", "slot"], ["1", "host"]] as const) {
    it(`the next turn lands on the other worker and reuses the KV moved from the ${source}, with the same greedy answer`, async () => {
      const cluster = await startCluster({
        workers: 2, model: STORIES_MODEL, coordinatorEnv: { KV_MOVE: "true" },
        workerEnv: { PARALLEL: parallel, WORKER_MAX_SESSIONS: "1", KV_HOST_BYTES: String(16 << 20), CONTEXT_SIZE: "1024", DECODE_CLAIM_TIMEOUT_MS: "60000" },
      });
      try {
        const first: Message[] = [{ role: "system", content: SYSTEM }, { role: "user", content: "Tell me about a fox." }];
        const t1 = await turn(cluster.url, `move-${source}`, first);
        assert.doesNotMatch(t1.route, /kv_moved=/, "an ordinary turn moves nothing");
        const holder = cluster.workers.find((w) => w.proc.name === t1.worker)!;
        const other = cluster.workers.find((w) => w !== holder)!;

        // Another session fills the holder (one session each); it stays prefilled and never decodes.
        const blocker = await postJson(`${holder.url}/worker/prefill`, { session_id: "blocker", prompt: "Once upon a time", max_tokens: 8 });
        assert.equal(blocker.status, 200, JSON.stringify(blocker.body));
        const cache = (await getJson(`${holder.url}/worker/cache`)).body;
        if (source === "host") assert.deepEqual(cache.tiers.map((t: { conversation_id: string; tier: string }) => [t.conversation_id, t.tier]), [[`move-${source}`, "host"]]);
        else assert.equal(cache.entries[0]?.conversation_id, `move-${source}`);
        await waitFor(async () => {
          const ws = (await getJson(`${cluster.url}/coordinator/health/workers`)).body.workers as { worker_id: string; active_sessions: number }[];
          return ws.find((w) => w.worker_id === holder.proc.name)?.active_sessions === 1;
        }, "the coordinator sees the holder full");

        const second = [...first, { role: "assistant", content: t1.text }, { role: "user", content: "And then?" }];
        const t2 = await turn(cluster.url, `move-${source}`, second);
        assert.equal(t2.worker, other.proc.name);
        assert.match(t2.route, new RegExp(`kv_moved=${holder.proc.name}:\\d+:${source}`));
        assert.ok(t2.cached > 0, `turn 2 reused ${t2.cached} cached tokens`);
        assert.equal((await workerHealth(other.url)).kv_tiers.restored_host, 0, "the move restored no tier of the adopter's own");
        assert.equal((await postJson(`${other.url}/worker/export`, { conversation_id: "nobody" })).status, 404);

        // The same conversation, never moved (the holder free again), answers turn 2 the same way.
        assert.equal((await postJson(`${holder.url}/worker/cancel`, { session_id: "blocker" })).status, 200);
        const r1 = await turn(cluster.url, `twin-${source}`, first);
        assert.equal(r1.text, t1.text);
        const r2 = await turn(cluster.url, `twin-${source}`, [...first, { role: "assistant", content: r1.text }, { role: "user", content: "And then?" }]);
        assert.doesNotMatch(r2.route, /kv_moved=/);
        assert.equal(t2.text, r2.text);
      } finally {
        await cluster.stop();
      }
    });
  }
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCluster, workerHealth } from "../helpers/cluster.js";
import { getJson, postJson, waitFor } from "../helpers/http.js";
import { STORIES_MODEL, missingModel } from "../helpers/processes.js";

/**
 * Graceful drain with KV handoff on stories260K: the worker holding a conversation drains (by the
 * operator's API or SIGTERM), its cached sequence is re-prefilled on the other worker, and the
 * conversation's next turn lands there and reuses it, with no error.
 */
const skip = missingModel(STORIES_MODEL);
const SYSTEM = "You are a storyteller. Tell short, happy stories about animals in the forest, with a friendly tone. ";

async function turn(url: string, conversation: string, messages: { role: string; content: string }[]) {
  const r = await postJson(`${url}/v1/chat/completions`, { model: "stories260K", messages, max_tokens: 24, temperature: 0 }, { "x-session-id": conversation });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return { worker: String(r.headers["x-worker-id"]), text: r.body.choices[0].message.content as string, cached: r.body.usage.prompt_tokens_details.cached_tokens as number };
}

describe("graceful drain with KV handoff", { skip }, () => {
  for (const how of ["api", "sigterm"] as const) {
    it(`moves a conversation's cache to another worker when its worker drains (${how}), and the next turn reuses it`, async () => {
      const cluster = await startCluster({ workers: 2, model: STORIES_MODEL });
      try {
        const conversation = `handoff-${how}`;
        const history = [{ role: "system", content: SYSTEM }, { role: "user", content: "Tell me about a fox." }];
        const t1 = await turn(cluster.url, conversation, history);
        const holder = cluster.workers.find((w) => w.proc.name === t1.worker)!;
        const other = cluster.workers.find((w) => w !== holder)!;
        if (how === "api") {
          const d = await postJson(`${cluster.url}/coordinator/workers/${holder.proc.name}/drain`, {});
          assert.equal(d.status, 200, JSON.stringify(d.body));
          assert.equal(d.body.draining, true);
          assert.ok(d.body.handed_off >= 1, JSON.stringify(d.body));
          assert.equal(d.body.targets[other.proc.name], d.body.handed_off);
          assert.equal((await workerHealth(holder.url)).draining, true);
        } else {
          holder.proc.kill("SIGTERM");
          const done = await holder.proc.waitForLog((l) => l.msg === "worker.handoff_done", 20_000, "worker.handoff_done");
          assert.ok((done.result as { handed_off: number }).handed_off >= 1);
          assert.equal((await holder.proc.exited).code, 0);
        }
        await waitFor(async () => (await workerHealth(other.url)).cached_sequences >= 1, "the cache adopted");
        const t2 = await turn(cluster.url, conversation, [...history, { role: "assistant", content: t1.text }, { role: "user", content: "And then?" }]);
        assert.equal(t2.worker, other.proc.name);
        assert.ok(t2.cached > 0, `turn 2 reused ${t2.cached} cached tokens`);
        await waitFor(async () => (await getJson(`${cluster.url}/coordinator/health`)).body.active_sessions === 0, "no session left");
      } finally {
        await cluster.stop();
      }
    });
  }
});

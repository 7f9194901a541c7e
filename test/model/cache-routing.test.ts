import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { waitForRoutable, workerHealth } from "../helpers/cluster.js";
import { getJson, postJson, streamSse, waitFor } from "../helpers/http.js";
import { STORIES_MODEL, missingModel, startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";

/**
 * Cache-aware routing end to end: two coordinator replicas (A, B) without shared state, two
 * stories260K workers (w1, w2) with 2 decode slots each, heartbeating to both. The workers publish
 * their prefix caches; each coordinator indexes them and routes a conversation's next turn to the
 * worker that holds its history, unless that worker is saturated.
 */
const skip = missingModel(STORIES_MODEL);
const NO_END = { "1": -100, "2": -100 };
const SYSTEM = "You are a storyteller who tells short happy stories about animals in the forest. ".repeat(8);

interface Chat {
  status: number;
  worker: string;
  decision: string;
  text: string;
  prompt: number;
  cached: number;
}

describe("cache-aware routing across coordinator replicas", { skip }, () => {
  let a: Served;
  let b: Served;
  const workers: Record<string, Served> = {};
  const other = (w: string) => (w === "w1" ? "w2" : "w1");

  before(async () => {
    // Saturated once both decode slots are busy (the default, named here as the test depends on it).
    const env = { SCHEDULER_SATURATION: "1" };
    [a, b] = await Promise.all([startCoordinatorProc(env), startCoordinatorProc(env)]);
    const [w1, w2] = await Promise.all(
      ["w1", "w2"].map((id) => startWorkerProc(`${a.url},${b.url}`, { model: STORIES_MODEL, id, env: { PARALLEL: "2" } })),
    );
    workers.w1 = w1!;
    workers.w2 = w2!;
    await Promise.all([waitForRoutable(a.url, 2), waitForRoutable(b.url, 2)]);
  });
  after(async () => {
    await Promise.all([...Object.values(workers).map((w) => w.proc.stop()), a?.proc.stop(), b?.proc.stop()]);
  });

  async function chat(coordinator: Served, messages: { role: string; content: string }[], session?: string): Promise<Chat> {
    const res = await postJson(
      `${coordinator.url}/v1/chat/completions`,
      { model: "stories260K", messages, max_tokens: 16, temperature: 0, logit_bias: NO_END },
      session !== undefined ? { "x-session-id": session } : {},
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return {
      status: res.status,
      worker: String(res.headers["x-worker-id"]),
      decision: String(res.headers["x-route-decision"]),
      text: res.body.choices[0].message.content,
      prompt: res.body.usage.prompt_tokens,
      cached: res.body.usage.prompt_tokens_details.cached_tokens,
    };
  }

  /** Entry id → block keys, as a coordinator indexes a worker and as the worker publishes it. */
  async function indexed(coordinator: Served, worker: string): Promise<Record<string, string[]>> {
    return (await getJson(`${coordinator.url}/coordinator/health/prefix-index`)).body.workers[worker] ?? {};
  }
  async function published(worker: string): Promise<Record<string, string[]>> {
    const listing = (await getJson(`${workers[worker]!.url}/worker/cache`)).body as { entries: { id: number; published: boolean; blocks: string[] }[] };
    return Object.fromEntries(listing.entries.filter((e) => e.published).map((e) => [String(e.id), e.blocks]));
  }
  const sameEntries = (x: Record<string, string[]>, y: Record<string, string[]>) => JSON.stringify(Object.entries(x).sort()) === JSON.stringify(Object.entries(y).sort());
  /** Waits until both replicas index exactly what every worker publishes. */
  async function indexesAgree(): Promise<void> {
    await waitFor(async () => {
      for (const w of Object.keys(workers)) {
        if (!workers[w]!.proc.alive) continue;
        const truth = await published(w);
        for (const c of [a, b]) if (!sameEntries(await indexed(c, w), truth)) return false;
      }
      return true;
    }, "coordinator indexes equal to the workers' caches", 10_000);
  }

  /** A long decode held directly on a worker (it occupies one slot until aborted). */
  async function occupy(worker: string): Promise<() => Promise<void>> {
    const id = randomUUID();
    const url = workers[worker]!.url;
    const p = await postJson(`${url}/worker/prefill`, { session_id: id, prompt: "Once upon a time", max_tokens: 1500, sampling: { temperature: 0, logit_bias: NO_END } });
    assert.equal(p.status, 200);
    const ac = new AbortController();
    const stream = streamSse(`${url}/worker/decode`, { session_id: id }, { signal: ac.signal }).catch(() => undefined);
    return async () => {
      ac.abort();
      await stream;
      await waitFor(async () => (await workerHealth(url)).active_sessions === 0 || undefined, "worker idle", 10_000).catch(() => undefined);
    };
  }

  /** Both replicas see `worker` with `n` active sessions (its heartbeats). */
  async function seenActive(worker: string, n: number): Promise<void> {
    for (const c of [a, b]) {
      await waitFor(async () => {
        const t = (await getJson(`${c.url}/coordinator/health/workers`)).body.workers as { worker_id: string; active_sessions: number }[];
        return t.find((x) => x.worker_id === worker)?.active_sessions === n;
      }, `${worker} seen with ${n} sessions`);
    }
  }

  const messages = [
    { role: "system", content: SYSTEM },
    { role: "user", content: "Tell me about a fox named Red." },
  ];
  let holder = "";

  it("sends turn 2 to the worker holding turn 1, from the other replica too, though that worker is busier", async () => {
    const t1 = await chat(a, messages, "fox-story");
    holder = t1.worker;
    assert.match(t1.decision, /^worker=w\d;profile=cache-aware;/);
    await indexesAgree();
    // The holder now runs a long decode: by load alone the other worker would win.
    const release = await occupy(holder);
    try {
      await seenActive(holder, 1);
      messages.push({ role: "assistant", content: t1.text }, { role: "user", content: "What did Red find?" });
      const t2 = await chat(b, messages, "fox-story");
      assert.equal(t2.worker, holder, t2.decision);
      assert.ok(t2.cached >= t1.prompt - 1, `turn 2 reused turn 1 (${t2.cached} cached of ${t2.prompt}; turn 1 had ${t1.prompt})`);
      assert.ok(t2.cached < t2.prompt);
      const m = /;prefix=([0-9.]+);.*;prefix_blocks=(\d+)\/(\d+)/.exec(t2.decision);
      assert.ok(m, t2.decision);
      assert.ok(Number(m[1]) >= 0.8 && Number(m[2]) >= 10 && Number(m[2]) / Number(m[3]) === Number(m[1]), `most of the prompt is held: ${t2.decision}`);
      assert.match(t2.decision, /;in_flight=0\.5000;/, "the holder was busier");
    } finally {
      await release();
    }
    await indexesAgree();
  });

  it("keeps every replica's index equal to what the workers' caches hold, KV included", async () => {
    await indexesAgree();
    for (const w of Object.keys(workers)) {
      const listing = (await getJson(`${workers[w]!.url}/worker/cache`)).body as { entries: { tokens: number; held_tokens: number }[] };
      for (const e of listing.entries) assert.ok(e.held_tokens >= e.tokens - 1 && e.held_tokens <= e.tokens, `${w}: the sequence holds ${e.held_tokens} of ${e.tokens} tokens`);
    }
    const h = (await getJson(`${a.url}/coordinator/health`)).body;
    assert.equal(h.scheduler.profile, "cache-aware");
    assert.ok(h.scheduler.prefix_index.entries >= 1);
  });

  it("routes a request without a session id by its prefix alone", async () => {
    const t = await chat(b, [...messages, { role: "assistant", content: "Red found a ball." }, { role: "user", content: "Then?" }]);
    assert.equal(t.worker, holder, t.decision);
    assert.ok(t.cached > t.prompt / 2, `${t.cached} of ${t.prompt}`);
    assert.doesNotMatch(t.decision, /home=/, "no conversation, no home");
    await indexesAgree();
  });

  it("never sends work to a saturated worker for its cache: load decides", async () => {
    const releases = [await occupy(holder), await occupy(holder)];
    try {
      await seenActive(holder, 2);
      const t = await chat(a, [...messages, { role: "assistant", content: "Red found a ball." }, { role: "user", content: "And?" }], "fox-story");
      assert.equal(t.worker, other(holder), t.decision);
      assert.match(t.decision, new RegExp(`;saturated=${holder}(;|$)`));
      assert.match(t.decision, new RegExp(`;runner_up=${holder}:`));
    } finally {
      for (const r of releases) await r();
    }
    await indexesAgree();
  });

  it("shows the last decisions and the queue to operators", async () => {
    const r = (await getJson(`${a.url}/coordinator/health/routing`)).body;
    assert.equal(r.profile, "cache-aware");
    assert.equal(r.queue.size, 0);
    const last = r.recent.at(-1);
    assert.equal(last.worker_id, other(holder));
    assert.deepEqual(last.saturated, [holder]);
    assert.ok(last.prompt_tokens > 0);
  });

  it("drops a worker from the index when it leaves", async () => {
    const leaving = other(holder);
    assert.ok(Object.keys(await indexed(a, leaving)).length > 0, "it held something");
    await workers[leaving]!.proc.stop();
    for (const c of [a, b]) {
      await waitForRoutable(c.url, 1);
      // A draining worker drops its cache at once; once it is gone, the index forgets it entirely.
      await waitFor(async () => Object.keys(await indexed(c, leaving)).length === 0, "index cleaned");
      await waitFor(async () => (await getJson(`${c.url}/coordinator/health`)).body.scheduler.prefix_index.workers === 1, "worker forgotten");
    }
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "undici";
import { startCluster, type Cluster } from "../helpers/cluster.js";
import { getJson, postJson, waitFor } from "../helpers/http.js";

/**
 * The admission queue against a real fleet whose capacity is one session (WORKER_MAX_SESSIONS=1):
 * a request at capacity waits (streaming clients hear their position), by priority then arrival;
 * a full queue answers 429 with Retry-After; a wait past QUEUE_TIMEOUT_MS answers 503; a client
 * that goes away leaves the queue at once. The worker is the sim engine at 20 ms a token, so that a
 * stream holding the capacity outlasts the queue's timeout however fast a real model would be.
 */
const NO_END = { "1": -100, "2": -100 };
const SIM_WORKER = ["--engine", "sim", "--model-id", "stories260K", "--sim-itl-ms", "20", "--sim-itl-per-sequence-ms", "0"];

/** A streaming request whose body is read as it arrives. */
class OpenStream {
  text = "";
  status = 0;
  headers: Record<string, string | string[] | undefined> = {};
  readonly ac = new AbortController();
  readonly done: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(url: string, body: unknown, headers: Record<string, string> = {}) {
    this.done = (async () => {
      try {
        const res = await request(url, {
          method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", ...headers },
          signal: this.ac.signal, headersTimeout: 60_000, bodyTimeout: 60_000,
        });
        this.status = res.statusCode;
        this.headers = res.headers;
        for await (const chunk of res.body) {
          this.text += chunk.toString();
          for (const w of this.waiters.splice(0)) w();
        }
      } catch {
        // aborted by the test
      } finally {
        for (const w of this.waiters.splice(0)) w();
      }
    })();
  }

  /** Resolves once the body so far contains `needle`. */
  async until(needle: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.text.includes(needle)) {
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(needle)} in ${JSON.stringify(this.text.slice(0, 500))}`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), new Promise((r) => setTimeout(r, 100))]);
    }
  }
}

describe("the admission queue of a coordinator", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({
      workers: 1, workerArgs: SIM_WORKER,
      coordinatorEnv: { QUEUE_SIZE: "2", QUEUE_TIMEOUT_MS: "3000" },
      workerEnv: { WORKER_MAX_SESSIONS: "1" },
    });
  });
  after(async () => cluster?.stop());

  const infer = (extra: Record<string, unknown> = {}) => ({ prompt: "Once upon a time", model: "m", max_tokens: 4, ...extra });
  const health = async () => (await getJson(`${cluster.url}/coordinator/health`)).body;

  /** One long stream holding the fleet's only session. */
  async function hold(): Promise<OpenStream> {
    const s = new OpenStream(`${cluster.url}/coordinator/infer`, infer({ max_tokens: 1500, logit_bias: NO_END }));
    await s.until('"token"');
    return s;
  }
  async function free(held: OpenStream): Promise<void> {
    held.ac.abort();
    await held.done;
  }
  const queued = (n: number) => waitFor(async () => (await health()).queue.size === n, `${n} queued`);

  it("makes a request at capacity wait, telling a streaming client its position, and runs it when capacity frees", async () => {
    const held = await hold();
    const waiting = new OpenStream(`${cluster.url}/coordinator/infer`, infer());
    await waiting.until(": queued position=1 size=1\n\n");
    assert.equal(waiting.status, 200, "the stream started while waiting");
    const h = await health();
    assert.equal(h.queue.size, 1);
    assert.equal(h.active_sessions, 1);
    await free(held);
    await waiting.done;
    assert.match(waiting.text, /\n: route worker=w1;profile=cache-aware;.*;queued_ms=\d+/);
    assert.match(waiting.text, /"finished":true,"reason":"length"/);
    await queued(0);
  });

  it("serves waiters by priority then arrival, and answers 429 with Retry-After when the queue is full", async () => {
    const held = await hold();
    const later = new OpenStream(`${cluster.url}/coordinator/infer`, infer(), { "x-request-id": "later", "x-priority": "0" });
    let first: OpenStream | undefined;
    try {
      await later.until(": queued");
      first = new OpenStream(`${cluster.url}/coordinator/infer`, infer({ priority: -5 }), { "x-request-id": "first" });
      await first.until(": queued position=1 size=2");
      const full = await postJson(`${cluster.url}/v1/completions`, { model: "stories260K", prompt: "x", max_tokens: 2 });
      assert.equal(full.status, 429);
      assert.equal(full.body.error.code, "queue_full");
      assert.match(String(full.headers["retry-after"]), /^\d+$/);
      await later.until(": queued position=2 size=2");
    } finally {
      await free(held);
      await Promise.all([first?.done, later.done]);
    }
    const admitted = cluster.coordinator.proc.logs.filter((l) => l.msg === "queue.admitted").map((l) => l.request_id);
    assert.deepEqual(admitted.slice(-2), ["first", "later"]);
  });

  it("answers 503 queue_timeout to a request that waited too long; a streaming one gets it in the stream", async () => {
    const held = await hold();
    try {
      const stream = new OpenStream(`${cluster.url}/coordinator/infer`, infer());
      const res = await postJson(`${cluster.url}/v1/completions`, { model: "stories260K", prompt: "x", max_tokens: 2 });
      assert.equal(res.status, 503);
      assert.equal(res.body.error.code, "queue_timeout");
      assert.match(String(res.headers["retry-after"]), /^\d+$/);
      await stream.done;
      assert.equal(stream.status, 200);
      assert.match(stream.text, /^: queued position=1 size=1\n\n/);
      assert.match(stream.text, /data: \{"token":"","finished":true,"reason":"error","error":\{"code":"queue_timeout"/);
      await queued(0);
    } finally {
      await free(held);
    }
  });

  it("forgets a waiting client that disconnects at once, and never runs its request", async () => {
    const held = await hold();
    const gone = new OpenStream(`${cluster.url}/coordinator/infer`, infer(), { "x-request-id": "gone" });
    await gone.until(": queued");
    gone.ac.abort();
    await queued(0);
    await free(held);
    const after = new OpenStream(`${cluster.url}/coordinator/infer`, infer());
    await after.done;
    assert.match(after.text, /"finished":true/);
    assert.equal(cluster.workers[0]!.proc.logs.some((l) => l.msg === "session.start" && l.request_id === "gone"), false);
  });
});

describe("a coordinator with QUEUE_SIZE=0", () => {
  it("refuses at capacity at once with 503, the seed's behaviour", async () => {
    const cluster = await startCluster({ workers: 1, workerArgs: SIM_WORKER, coordinatorEnv: { QUEUE_SIZE: "0" }, workerEnv: { WORKER_MAX_SESSIONS: "1" } });
    try {
      const held = new OpenStream(`${cluster.url}/coordinator/infer`, { prompt: "Once", model: "m", max_tokens: 1500, logit_bias: NO_END });
      await held.until('"token"');
      const res = await postJson(`${cluster.url}/coordinator/infer`, { prompt: "x", model: "m", max_tokens: 5 });
      assert.equal(res.status, 503);
      assert.equal(res.body.reason, "system_sessions_full");
      held.ac.abort();
      await held.done;
    } finally {
      await cluster.stop();
    }
  });
});

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Agent, request as httpRequest, type ClientRequest } from "node:http";
import { waitForRoutable } from "../helpers/cluster.js";
import { getJson, postJson, streamSse, waitFor } from "../helpers/http.js";
import { parsePromText, sampleValue, scrape } from "../helpers/prom-text.js";
import { startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";

/**
 * At its session limit with no room to wait, the coordinator answers a new request from its counts
 * alone, when the request's headers arrive: the body is never read (the test withholds it), no
 * plan, no scheduling, no stream is set up. The refusal is counted and logged like any other.
 */
const SIM = ["--engine", "sim", "--sim-itl-ms", "50", "--sim-itl-per-sequence-ms", "0"];
/** The body sent late (after the answer), exactly its declared length. */
const LATE_BODY = '{"prompt":"x","model":"m","max_tokens":1}';

/** Headers now, body withheld (content-length promised); the answer, its headers and body. */
function withheldBody(url: string, agent: Agent | false = false): { req: ClientRequest; answer: Promise<{ status: number; headers: Record<string, unknown>; body: any }> } {
  const u = new URL(url);
  const req = httpRequest({
    host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent,
    headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(LATE_BODY)), "x-request-id": "unread-1" },
  });
  const answer = new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on("error", reject);
  });
  req.flushHeaders();
  return { req, answer };
}

/** Opens a stream and resolves once the coordinator counts `n` live sessions (the stream runs on). */
async function holdSessions(url: string, n: number, body: unknown): Promise<AbortController> {
  const stop = new AbortController();
  for (let i = 0; i < n; i++) void streamSse(`${url}/coordinator/infer`, body, { signal: stop.signal }).catch(() => undefined);
  await waitFor(async () => (await getJson(`${url}/coordinator/health`)).body.active_sessions >= n, `${n} live sessions`, 10_000);
  return stop;
}

describe("refusals at capacity answered before the body is read", () => {
  describe("with the queue off", () => {
    let c: Served;
    let w: Served;
    before(async () => {
      c = await startCoordinatorProc({ SYSTEM_MAX_SESSIONS: "1", QUEUE_SIZE: "0" });
      w = await startWorkerProc(c.url, { id: "w1", args: SIM });
      await waitForRoutable(c.url, 1);
    });
    after(async () => Promise.all([w?.proc.stop(), c?.proc.stop()]));

    it("answers 503 system_sessions_full without the body, keeps the connection, and counts and logs the refusal", { timeout: 30_000 }, async () => {
      const stop = await holdSessions(c.url, 1, { prompt: "hold", model: "m", max_tokens: 400 });
      try {
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        const r = withheldBody(`${c.url}/coordinator/infer`, agent);
        const a = await r.answer;
        assert.equal(a.status, 503);
        assert.equal(a.body.reason, "system_sessions_full");
        assert.notEqual(a.headers.connection, "close");
        // The body arrives late: it is dropped, and the client's next request is answered.
        r.req.end(LATE_BODY);
        const next = await new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
          const u = new URL(`${c.url}/coordinator/health`);
          const q = httpRequest({ host: u.hostname, port: u.port, path: u.pathname, agent }, (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: q.reusedSocket }));
          });
          q.on("error", reject);
          q.end();
        });
        assert.equal(next.status, 200);
        agent.destroy();
        const metrics = parsePromText((await scrape(c.url)).text);
        assert.ok((sampleValue(metrics, "inference_coordinator_rejected_total", { reason: "system_sessions_full" }) ?? 0) >= 1);
        const line = await c.proc.waitForLog((l) => l.msg === "scheduler.reject" && l.request_id === "unread-1", 5000, "the refusal's log line");
        assert.equal(line.body, "unread");
        assert.equal(line.reason, "system_sessions_full");
      } finally {
        stop.abort();
      }
    });
  });

  describe("with the queue full", () => {
    let c: Served;
    let w: Served;
    before(async () => {
      c = await startCoordinatorProc({ SYSTEM_MAX_SESSIONS: "1", QUEUE_SIZE: "1", QUEUE_TIMEOUT_MS: "20000" });
      w = await startWorkerProc(c.url, { id: "w1", args: SIM });
      await waitForRoutable(c.url, 1);
    });
    after(async () => Promise.all([w?.proc.stop(), c?.proc.stop()]));

    it("answers 429 queue_full without the body while a request waits and one streams", { timeout: 30_000 }, async () => {
      const stop = await holdSessions(c.url, 1, { prompt: "hold", model: "m", max_tokens: 400 });
      try {
        void postJson(`${c.url}/coordinator/infer`, { prompt: "wait", model: "m", max_tokens: 1 }).catch(() => undefined);
        await waitFor(async () => (await getJson(`${c.url}/coordinator/health`)).body.queue.size === 1, "one request queued", 10_000);
        const r = withheldBody(`${c.url}/coordinator/infer`);
        const a = await r.answer;
        r.req.destroy();
        assert.equal(a.status, 429);
        assert.equal(a.body.reason, "queue_full");
      } finally {
        stop.abort();
      }
    });
  });
});

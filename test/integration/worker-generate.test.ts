import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { SSE_HEADERS } from "../../src/protocol/sse.js";
import { waitWorkerIdle, workerHealth } from "../helpers/cluster.js";
import { postJson, streamSse, waitFor } from "../helpers/http.js";
import { OtlpReceiver } from "../helpers/otlp-receiver.js";
import { parsePromText, sampleValue, scrape } from "../helpers/prom-text.js";
import { startWorkerProc, type Served } from "../helpers/processes.js";

/**
 * `POST /worker/generate`: prefill and decode in one exchange (worker-api.ts GenerateAckEvent). A
 * refusal is /worker/prefill's, status and body, before any stream byte; a success opens with the
 * prefill's answer as an event, then the decode events of that session; closing the connection
 * cancels the session. A real sim worker on loopback, no coordinator (heartbeats go nowhere).
 */
const NO_COORDINATOR = "http://127.0.0.1:9";
const SIM = ["--engine", "sim", "--sim-itl-ms", "2", "--sim-itl-per-sequence-ms", "0"];
const MAX_SESSIONS = 2;

describe("prefill and decode in one exchange (POST /worker/generate)", () => {
  let worker: Served;
  let w: string;
  let receiver: OtlpReceiver;
  before(async () => {
    receiver = await new OtlpReceiver().start();
    worker = await startWorkerProc(NO_COORDINATOR, {
      args: SIM, env: { PARALLEL: "2", WORKER_MAX_SESSIONS: String(MAX_SESSIONS), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
    });
    w = worker.url;
  });
  after(async () => {
    await worker?.proc.stop();
    await receiver?.stop();
  });

  const idle = () => waitWorkerIdle(w);

  it("opens with the acknowledgement /worker/prefill answers for the same prompt, then tokens from seq 0 and the end", async () => {
    const prompt = "Once upon a time there was a worker";
    // On a fresh worker, a prefill whose session is then cancelled leaves every slot empty again.
    const a = randomUUID();
    const p = await postJson(`${w}/worker/prefill`, { session_id: a, prompt, max_tokens: 6 });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal((await postJson(`${w}/worker/cancel`, { session_id: a })).status, 200);
    await idle();

    const g = await streamSse(`${w}/worker/generate`, { session_id: randomUUID(), prompt, max_tokens: 6 });
    assert.equal(g.status, 200, g.raw);
    assert.equal(g.headers["content-type"], SSE_HEADERS["content-type"]);
    assert.ok(g.raw.startsWith(`data: {"prefill":${JSON.stringify(p.body)}}\n\n`), g.raw.slice(0, 300));
    assert.deepEqual(g.events[0], { prefill: p.body });
    const tokens = g.events.slice(1, -1);
    assert.deepEqual(tokens.map((e) => e.seq), [0, 1, 2, 3, 4, 5]);
    assert.ok(tokens.every((e) => typeof e.token === "string" && e.finished === undefined));
    const cache = g.last.cache === undefined ? {} : { cache: g.last.cache };
    assert.deepEqual(g.last, { token: "", seq: 6, finished: true, reason: "length", prompt_tokens: p.body.prompt_tokens, completion_tokens: 6, ...cache });
    const h = await idle();
    assert.equal(h.cached_sequences, 1, "the finished sequence is kept as the decode path keeps it");
  });

  it("refuses an invalid request with /worker/prefill's status and body", async () => {
    const bodies: unknown[] = [
      "",
      "not json",
      {},
      { session_id: "s-1" },
      { session_id: "s-1", prompt: "x", messages: [{ role: "user", content: "x" }] },
      { session_id: "s-1", prompt: "x", sampling: 5 },
      { session_id: "s-1", prompt: "x", max_tokens: 0 },
      { session_id: "s-1", prompt: "x", max_tokens: 5000 },
      { session_id: "s-1", messages: [{ role: "user", content: "x" }], tools: 5 },
      // The sim engine serves no logprobs: refused after admission, the session ended.
      { session_id: "s-1", prompt: "x", sampling: { top_logprobs: 2 } },
    ];
    for (const body of bodies) {
      const headers = { "x-request-id": `refusal-${randomUUID()}` };
      const viaPrefill = await postJson(`${w}/worker/prefill`, body, headers);
      const viaGenerate = await postJson(`${w}/worker/generate`, body, headers);
      assert.ok(viaPrefill.status >= 400, JSON.stringify(body));
      assert.equal(viaGenerate.status, viaPrefill.status, JSON.stringify(body));
      assert.deepEqual(viaGenerate.body, viaPrefill.body);
      assert.equal(viaGenerate.headers["content-type"], "application/json");
    }
    await idle();
  });

  it("refuses with /worker/prefill's 503 when the worker holds its limit of sessions", async () => {
    const held = [randomUUID(), randomUUID()];
    for (const id of held) assert.equal((await postJson(`${w}/worker/prefill`, { session_id: id, prompt: "hold", max_tokens: 4 })).status, 200);
    const headers = { "x-request-id": `full-${randomUUID()}` };
    const body = { session_id: randomUUID(), prompt: "one more", max_tokens: 4 };
    const viaGenerate = await postJson(`${w}/worker/generate`, body, headers);
    const viaPrefill = await postJson(`${w}/worker/prefill`, body, headers);
    assert.equal(viaGenerate.status, 503);
    assert.equal(viaGenerate.body.reason, "worker_sessions_full");
    assert.equal(viaGenerate.status, viaPrefill.status);
    assert.deepEqual(viaGenerate.body, viaPrefill.body);
    for (const id of held) assert.equal((await postJson(`${w}/worker/cancel`, { session_id: id })).status, 200);
    await idle();
  });

  it("cancels the session and frees its slot and KV when the client closes the stream", async () => {
    const id = randomUUID();
    const firstToken = await new Promise<string>((resolve, reject) => {
      const req = httpRequest(`${w}/worker/generate`, { method: "POST", headers: { "content-type": "application/json" }, agent: false }, (res) => {
        let seen = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          seen += chunk;
          // The acknowledgement, then a token: close the connection mid-stream.
          if (seen.includes('"seq":0')) {
            req.destroy();
            resolve(seen);
          }
        });
        res.on("error", () => undefined);
      });
      req.on("error", (err) => {
        if (!req.destroyed) reject(err);
      });
      req.end(JSON.stringify({ session_id: id, prompt: "a long story", max_tokens: 2000 }));
    });
    assert.ok(firstToken.startsWith('data: {"prefill":'), firstToken.slice(0, 200));
    const h = await idle();
    assert.equal(h.active_sessions, 0);
    assert.equal(h.running, 0);
    const end = await worker.proc.waitForLog((l) => l.msg === "session.end" && l.session_id === id, 10_000, "the session's end");
    assert.ok(end.reason === "disconnect" || end.reason === "cancelled", String(end.reason));
    assert.ok(Number(end.completion_tokens) < 2000, "the generation stopped early");
  });

  it("keeps a conversation through generate: the next turn reuses its KV", async () => {
    const conversation = `conv-${randomUUID()}`;
    const first = "Tell me about a cat who likes to sleep in the sun.";
    const t1 = await streamSse(`${w}/worker/generate`, { session_id: randomUUID(), prompt: first, max_tokens: 8, conversation_id: conversation });
    assert.equal(t1.status, 200, t1.raw);
    assert.equal(t1.last.reason, "length");
    assert.equal((await idle()).kept_sessions, 1);
    const t2 = await streamSse(`${w}/worker/generate`, {
      session_id: randomUUID(), prompt: `${first}${t1.text} And then?`, max_tokens: 8, conversation_id: conversation,
    });
    assert.equal(t2.status, 200, t2.raw);
    const ack = t2.events[0].prefill;
    assert.ok(ack.cached_tokens >= t1.events[0].prefill.prompt_tokens - 1, `cached ${ack.cached_tokens}`);
    assert.ok(ack.prompt_tokens > t1.events[0].prefill.prompt_tokens);
    assert.equal(t2.last.reason, "length");
  });

  it("takes a chat with tools as /worker/prefill does", async () => {
    const messages = [{ role: "user", content: "What is the weather in Paris?" }];
    const tools = {
      tools: [{ name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } }],
      choice: "auto", parallel: false, history: messages,
    };
    const sampling = { json_schema: { type: "object", properties: { city: { type: "string" } } }, json_schema_or_text: true };
    const a = randomUUID();
    const p = await postJson(`${w}/worker/prefill`, { session_id: a, messages, tools, sampling, max_tokens: 8 });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal((await postJson(`${w}/worker/cancel`, { session_id: a })).status, 200);
    await idle();
    const g = await streamSse(`${w}/worker/generate`, { session_id: randomUUID(), messages, tools, sampling, max_tokens: 8 });
    assert.equal(g.status, 200, g.raw);
    // The prefix cache may serve one and not the other; everything else is the same answer.
    assert.deepEqual({ ...g.events[0].prefill, cached_tokens: 0 }, { ...p.body, cached_tokens: 0 });
    assert.equal(g.last.finished, true);
    await idle();
  });

  it("traces a generate as a prefill and a decode under the caller's span, and counts both in the worker's metrics", async () => {
    const counts = async () => {
      const m = parsePromText((await scrape(w)).text);
      return {
        prefills: sampleValue(m, "inference_worker_prefill_seconds_count") ?? 0,
        tokens: sampleValue(m, "inference_worker_generation_tokens_total") ?? 0,
        answered: sampleValue(m, "inference_worker_http_requests_total", { route: "/worker/generate", method: "POST", status: "200" }) ?? 0,
      };
    };
    const before = await counts();
    const traceId = randomBytes(16).toString("hex");
    const caller = randomBytes(8).toString("hex");
    const g = await streamSse(`${w}/worker/generate`, { session_id: randomUUID(), prompt: "traced", max_tokens: 3 }, {
      headers: { traceparent: `00-${traceId}-${caller}-01`, "x-request-id": "traced-1" },
    });
    assert.equal(g.status, 200, g.raw);
    const spans = await waitFor(() => {
      const mine = receiver.spans.filter((x) => x.traceId === traceId);
      return mine.length >= 2 ? mine : undefined;
    }, "the worker's spans", 15_000);
    assert.deepEqual(spans.map((x) => x.name).sort(), ["worker.decode", "worker.prefill"]);
    for (const span of spans) {
      assert.equal(span.parentSpanId, caller, `${span.name} is a child of the caller's span`);
      assert.equal(span.attributes["request.id"], "traced-1");
    }
    const decode = spans.find((x) => x.name === "worker.decode")!;
    assert.equal(Number(decode.attributes.completion_tokens), 3);
    assert.ok(spans.find((x) => x.name === "worker.prefill")!.end <= decode.start, "the prefill ends before the decode starts");
    const after = await waitFor(async () => {
      const c = await counts();
      return c.answered > before.answered ? c : undefined;
    }, "the response counted");
    assert.deepEqual([after.prefills - before.prefills, after.tokens - before.tokens, after.answered - before.answered], [1, 3, 1]);
  });

  it("refuses with /worker/prefill's 503 while draining, and serves again after undrain", async () => {
    assert.equal((await postJson(`${w}/worker/drain`, {})).status, 200);
    const headers = { "x-request-id": `drain-${randomUUID()}` };
    const body = { session_id: randomUUID(), prompt: "drained", max_tokens: 4 };
    const viaGenerate = await postJson(`${w}/worker/generate`, body, headers);
    const viaPrefill = await postJson(`${w}/worker/prefill`, body, headers);
    assert.equal(viaGenerate.status, 503);
    assert.equal(viaGenerate.body.reason, "draining");
    assert.deepEqual([viaGenerate.status, viaGenerate.body], [viaPrefill.status, viaPrefill.body]);
    assert.equal((await postJson(`${w}/worker/undrain`, {})).status, 200);
    const g = await streamSse(`${w}/worker/generate`, body);
    assert.equal(g.status, 200, g.raw);
    assert.equal(g.last.reason, "length");
  });
});

describe("a generate whose prefill fails in the engine", () => {
  it("is answered with /worker/prefill's 5xx status and body, and leaves no session", async () => {
    const worker = await startWorkerProc(NO_COORDINATOR, { args: [...SIM, "--sim-fail-prefill", "1"] });
    try {
      const headers = { "x-request-id": `failed-${randomUUID()}` };
      const body = { session_id: randomUUID(), prompt: "doomed", max_tokens: 4 };
      const viaGenerate = await postJson(`${worker.url}/worker/generate`, body, headers);
      const viaPrefill = await postJson(`${worker.url}/worker/prefill`, body, headers);
      assert.ok(viaGenerate.status >= 500, `${viaGenerate.status} ${JSON.stringify(viaGenerate.body)}`);
      assert.deepEqual([viaGenerate.status, viaGenerate.body], [viaPrefill.status, viaPrefill.body]);
      assert.equal(viaGenerate.headers["content-type"], "application/json");
      await waitWorkerIdle(worker.url);
    } finally {
      await worker.proc.stop();
    }
  });
});

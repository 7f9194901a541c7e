import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { request } from "undici";
import { waitForRoutable } from "../helpers/cluster.js";
import { getJson, postJson, streamSse, waitFor } from "../helpers/http.js";
import { OtlpReceiver, type ReceivedSpan } from "../helpers/otlp-receiver.js";
import { startCoordinatorProc, startWorkerProc, type LogLine, type Served } from "../helpers/processes.js";
import { parsePromText, promtoolCheck, promtoolPath, sampleValue, scrape } from "../helpers/prom-text.js";

/**
 * One coordinator and two workers on the demo model, all exporting traces to a receiver in this
 * test: w1 with vLLM's metric names (the default), w2 without.
 */
const CHROMIUM = "/usr/bin/chromium";
/** The page's DOM, inside callbacks that run in the browser. */
declare const document: any;
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN = "00f067aa0ba902b7";

let receiver: OtlpReceiver;
let coordinator: Served;
let w1: Served;
let w2: Served;

function infer(requestId: string, maxTokens = 24, headers: Record<string, string> = {}) {
  return streamSse(`${coordinator.url}/coordinator/infer`, { prompt: "Once upon a time", model: "any", max_tokens: maxTokens }, {
    headers: { "x-request-id": requestId, ...headers },
  });
}

describe("observability of a running cluster", () => {
  before(async () => {
    receiver = await new OtlpReceiver().start();
    const otlp = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url };
    coordinator = await startCoordinatorProc(otlp);
    [w1, w2] = await Promise.all([
      startWorkerProc(coordinator.url, { id: "w1", env: otlp }),
      startWorkerProc(coordinator.url, { id: "w2", env: { ...otlp, VLLM_METRICS: "false" } }),
    ]);
    await waitForRoutable(coordinator.url, 2);
  });

  after(async () => {
    await Promise.all([w1?.proc.stop(), w2?.proc.stop(), coordinator?.proc.stop()]);
    await receiver?.stop();
  });

  it("the coordinator and every worker serve /metrics whose counts follow the traffic", async () => {
    const before = parsePromText((await scrape(coordinator.url)).text);
    const tokensBefore = sampleValue(before, "inference_coordinator_generation_tokens_total") ?? 0;
    const res = await infer("obs-metrics-1", 16);
    assert.equal(res.status, 200);
    const worker = String(res.headers["x-worker-id"]);

    const c = await scrape(coordinator.url);
    assert.equal(c.status, 200);
    assert.match(c.contentType, /^text\/plain; version=0\.0\.4/);
    const cs = parsePromText(c.text);
    assert.equal(sampleValue(cs, "inference_coordinator_generation_tokens_total")! - tokensBefore, res.last.completion_tokens);
    assert.ok(sampleValue(cs, "inference_coordinator_stream_terminations_total", { reason: "complete" })! >= 1);
    assert.ok(sampleValue(cs, "inference_coordinator_scheduler_selections_total", { worker_id: worker, profile: "cache-aware" })! >= 1);
    assert.ok(sampleValue(cs, "inference_coordinator_time_to_first_token_seconds_count")! >= 1);
    assert.ok(sampleValue(cs, "inference_coordinator_http_requests_total", { route: "/coordinator/infer", method: "POST", status: "200" })! >= 1);
    assert.equal(sampleValue(cs, "inference_coordinator_workers_routable"), 2);
    for (const id of ["w1", "w2"]) assert.equal(sampleValue(cs, "inference_coordinator_worker_up", { worker_id: id }), 1);
    assert.ok(sampleValue(cs, "process_cpu_seconds_total") !== undefined, "process metrics are there");

    const served = worker === "w1" ? w1 : w2;
    const ws = parsePromText((await scrape(served.url)).text);
    assert.ok(sampleValue(ws, "inference_worker_generation_tokens_total")! >= res.last.completion_tokens);
    assert.ok(sampleValue(ws, "inference_worker_prefill_seconds_count")! >= 1);
    assert.equal(sampleValue(ws, "inference_worker_sessions"), 0, "the session ended with its stream");
    assert.ok(sampleValue(ws, "inference_worker_kv_limit_bytes")! > 0);

    const v1 = parsePromText((await scrape(w1.url)).text);
    const v2 = parsePromText((await scrape(w2.url)).text);
    for (const name of ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:prefix_cache_queries_total",
      "vllm:prefix_cache_hits_total", "vllm:time_to_first_token_seconds_count", "vllm:inter_token_latency_seconds_count",
      "vllm:e2e_request_latency_seconds_count", "vllm:prompt_tokens_total", "vllm:generation_tokens_total"]) {
      assert.notEqual(sampleValue(v1, name, { model_name: "demo" }), undefined, `w1 exposes ${name}`);
    }
    assert.equal(v2.filter((s) => s.name.startsWith("vllm:")).length, 0, "w2 was started with VLLM_METRICS=false");
  });

  it("promtool accepts every scrape; on a worker its only findings are the colons of vLLM's own names", {
    skip: promtoolPath() ? false : "promtool is not installed (Debian package `prometheus`; .ci/run installs it): skipped",
  }, async () => {
    await infer("obs-promtool-1", 8);
    const c = promtoolCheck((await scrape(coordinator.url)).text);
    assert.deepEqual(c, { code: 0, findings: [] }, "coordinator");
    const plain = promtoolCheck((await scrape(w2.url)).text);
    assert.deepEqual(plain, { code: 0, findings: [] }, "worker without vLLM names");
    const vllm = promtoolCheck((await scrape(w1.url)).text);
    assert.equal(vllm.code, 3, "lint findings, not a parse error");
    assert.equal(vllm.findings.length, 10);
    for (const f of vllm.findings) assert.match(f, /^vllm:[a-z0-9_]+ metric names should not contain ':'$/);
  });

  it("every log line of a request carries its request id, and its session and worker ids once known", async () => {
    const id = "obs-logs-1";
    const res = await infer(id, 8);
    assert.equal(res.status, 200);
    const worker = String(res.headers["x-worker-id"]);
    const served = worker === "w1" ? w1 : w2;
    const end = await coordinator.proc.waitForLog((l) => l.msg === "stream.end" && l.request_id === id, 10_000, "stream.end");
    await served.proc.waitForLog((l) => l.msg === "session.end" && l.request_id === id, 10_000, "session.end");

    const mine = (lines: LogLine[]) => lines.filter((l) => l.request_id === id);
    const coordLines = mine(coordinator.proc.logs);
    const workerLines = mine(served.proc.logs);
    assert.deepEqual(coordLines.map((l) => l.msg).filter((m) => m === "scheduler.select" || m === "stream.end"), ["scheduler.select", "stream.end"]);
    const select = coordLines.find((l) => l.msg === "scheduler.select")!;
    assert.equal(select.worker_id, worker);
    assert.equal(typeof select.score, "number");
    assert.ok("runner_up" in select, "the runner-up is logged (or null when alone)");
    for (const l of coordLines) {
      if (l.msg === "scheduler.select") continue;
      assert.equal(l.worker_id, worker, `${String(l.msg)} carries worker_id`);
      if (l.msg === "stream.end") assert.equal(l.session_id, end.session_id);
    }
    assert.deepEqual(workerLines.map((l) => l.msg).filter((m) => m === "session.start" || m === "session.end"), ["session.start", "session.end"]);
    for (const l of workerLines) {
      assert.equal(l.worker_id, worker, `${String(l.msg)} carries worker_id`);
      assert.equal(l.session_id, end.session_id, `${String(l.msg)} carries the session the coordinator streamed`);
    }
    // Any line anywhere that names a session also names its request and worker.
    for (const l of [...coordinator.proc.logs, ...w1.proc.logs, ...w2.proc.logs]) {
      if (l.session_id === undefined) continue;
      assert.equal(typeof l.request_id, "string", `${String(l.msg)} with a session_id has a request_id`);
      assert.equal(typeof l.worker_id, "string", `${String(l.msg)} with a session_id has a worker_id`);
    }
  });

  it("a request's trace reaches the OTLP receiver: request → admission → schedule → prefill → decode → stream, the workers' spans inside", async () => {
    const res = await infer("obs-trace-1", 8, { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01` });
    assert.equal(res.status, 200);
    const worker = String(res.headers["x-worker-id"]);
    const names = ["request", "admission", "schedule", "prefill", "decode", "stream", "worker.prefill", "worker.decode"];
    const spans = await waitFor(() => {
      const mine = receiver.spans.filter((s) => s.traceId === TRACE_ID);
      return names.every((n) => mine.some((s) => s.name === n)) ? mine : undefined;
    }, "all spans of the trace", 15_000);
    assert.ok(receiver.requests.every((r) => r.path === "/v1/traces" && r.contentType === "application/json"));
    assert.deepEqual(spans.map((s) => s.name).sort(), [...names].sort(), "one span of each, no retries");
    const by = (n: string) => spans.find((s) => s.name === n)!;
    const root = by("request");
    assert.equal(root.parentSpanId, CLIENT_SPAN, "joins the client's trace");
    assert.equal(root.service, "inference-engine-coordinator");
    assert.equal(root.attributes["request.id"], "obs-trace-1");
    assert.equal(root.attributes.termination, "complete");
    for (const n of ["admission", "schedule", "prefill", "decode", "stream"]) {
      assert.equal(by(n).parentSpanId, root.spanId, `${n} is a child of request`);
      assert.equal(by(n).service, "inference-engine-coordinator");
    }
    assert.equal(by("schedule").attributes["worker.id"], worker);
    assert.equal(by("worker.prefill").parentSpanId, by("prefill").spanId, "traceparent reached the worker's prefill");
    assert.equal(by("worker.decode").parentSpanId, by("decode").spanId, "traceparent reached the worker's decode");
    for (const n of ["worker.prefill", "worker.decode"]) {
      assert.equal(by(n).service, "inference-engine-worker");
      assert.equal(by(n).instance, worker);
    }
    const order: ReceivedSpan[] = ["request", "admission", "schedule", "prefill", "decode", "stream"].map(by);
    for (let i = 1; i < order.length; i++) {
      assert.ok(order[i]!.start >= order[i - 1]!.start, `${order[i]!.name} starts after ${order[i - 1]!.name}`);
    }
    assert.ok(by("prefill").end <= by("decode").start, "prefill ends before decode starts");
    for (const s of spans) {
      assert.ok(s.end >= s.start, `${s.name} ends after it starts`);
      assert.ok(s.start >= root.start && s.end <= root.end + 5_000_000n, `${s.name} lies within the request (5 ms slack across processes)`);
      assert.notEqual(s.status.code, 2, `${s.name} is not an error`);
    }
  });

  it("OpenAI completions, streamed or not, are counted and their timelines end", async () => {
    const before = parsePromText((await scrape(coordinator.url)).text);
    const tokens0 = sampleValue(before, "inference_coordinator_generation_tokens_total")!;
    const one = await postJson(`${coordinator.url}/v1/completions`, { model: "demo", prompt: "Once upon a time", max_tokens: 6 }, { "x-request-id": "obs-oai-1" });
    assert.equal(one.status, 200);
    const streamed = await streamSse(`${coordinator.url}/v1/completions`, { model: "demo", prompt: "Once upon a time", max_tokens: 5, stream: true }, {
      headers: { "x-request-id": "obs-oai-2" },
    });
    assert.equal(streamed.status, 200);
    // The client has the last byte a moment before the coordinator has closed its books on the stream.
    const after = await waitFor(async () => {
      const page = parsePromText((await scrape(coordinator.url)).text);
      return sampleValue(page, "inference_coordinator_streams_active") === 0 ? page : undefined;
    }, "no stream active");
    assert.equal(sampleValue(after, "inference_coordinator_generation_tokens_total")! - tokens0, one.body.usage.completion_tokens + 5);
    type Recent = { request_id: string; state: string; tokens: number; events: { kind: string }[] }[];
    const recent = await waitFor(async () => {
      const r = (await getJson(`${coordinator.url}/dashboard/api/state`)).body.recent as Recent;
      return ["obs-oai-1", "obs-oai-2"].every((id) => r.find((x) => x.request_id === id)?.state === "done") ? r : undefined;
    }, "both timelines done");
    for (const id of ["obs-oai-1", "obs-oai-2"]) {
      const r = recent.find((x) => x.request_id === id)!;
      assert.equal(r.state, "done", id);
      assert.equal(r.events.at(-1)!.kind, "end");
    }
    assert.ok(recent.find((x) => x.request_id === "obs-oai-2")!.events.some((e) => e.kind === "first_token"));
  });

  it("the dashboard in headless Chromium lists the workers, shows no console error, and its numbers move when a request runs", {
    skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (Debian package \`chromium\`; .ci/run installs it): skipped`,
  }, async (t) => {
    const { chromium } = await import("playwright-core");
    const profile = await mkdtemp(join(tmpdir(), "dashboard-chromium-"));
    const shot = process.env.DASHBOARD_SCREENSHOT ?? join(tmpdir(), "inference-engine-dashboard.png");
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, viewport: { width: 1440, height: 1100 },
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
    });
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const problems: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
      page.on("requestfailed", (r) => problems.push(`requestfailed: ${r.url()}`));
      await page.goto(`${coordinator.url}/dashboard`);
      await page.waitForSelector('#workers tr[data-worker-id="w1"]', { timeout: 15_000 });
      await page.waitForSelector('#workers tr[data-worker-id="w2"]', { timeout: 15_000 });
      assert.equal(await page.textContent("#status"), "live");
      assert.match((await page.textContent("#kpi-workers"))!, /^2 \/ 2$/);
      const requestsBefore = (await page.textContent("#total-requests"))!;
      const tokensBefore = (await page.textContent("#total-tokens"))!;

      const res = await infer("dash-req-1", 400);
      assert.equal(res.status, 200);
      const worker = String(res.headers["x-worker-id"]);
      await page.waitForFunction(
        ([r, t]) => document.getElementById("total-requests")!.textContent !== r && document.getElementById("total-tokens")!.textContent !== t,
        [requestsBefore, tokensBefore], { timeout: 15_000 },
      );
      const row = page.locator('#requests tr[data-request-id="dash-req-1"]');
      await row.waitFor({ timeout: 10_000 });
      assert.match((await row.textContent())!, new RegExp(worker));
      await page.waitForFunction((w) => {
        const cell = document.querySelector(`#workers tr[data-worker-id="${w}"] .worker-tps`);
        return cell !== null && Number(cell.textContent) > 0;
      }, worker, { timeout: 10_000 });
      await row.click();
      // The open timeline is redrawn at each poll; wait for the one that has the end.
      await page.waitForFunction(() => /complete \(/.test(document.querySelector("#requests tr.details")?.textContent ?? ""), undefined, { timeout: 10_000 });
      const details = (await page.textContent("#requests tr.details"))!;
      assert.match(details, new RegExp(`scheduled.*on ${worker} \\(cache-aware, attempt 1\\) score`));
      assert.match(details, /first_token/);
      assert.match(details, /complete \((length|stop)\)/);
      // A chart point needs a whole 2 s step behind it; the page counts the points it drew.
      await page.waitForFunction(() => Number(document.getElementById("chart-tps")!.dataset.points) > 0, undefined, { timeout: 10_000 });
      await mkdir(dirname(shot), { recursive: true });
      await page.screenshot({ path: shot, fullPage: true });
      t.diagnostic(`dashboard screenshot: ${shot}`);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await rm(profile, { recursive: true, force: true });
    }
  });
});

describe("the dashboard behind API keys", () => {
  it("serves its page openly but its data only with a key, like the client APIs", async () => {
    const c = await startCoordinatorProc({ API_KEYS: "dash-key-12345" });
    try {
      const page = await request(`${c.url}/dashboard`);
      assert.equal(page.statusCode, 200);
      assert.match(await page.body.text(), /<title>inference-engine/);
      assert.equal((await getJson(`${c.url}/dashboard/api/state`)).status, 401);
      const ok = await request(`${c.url}/dashboard/api/state`, { headers: { authorization: "Bearer dash-key-12345" } });
      assert.equal(ok.statusCode, 200);
      assert.equal(((await ok.body.json()) as { fleet: { workers: number } }).fleet.workers, 0);
      const metrics = await scrape(c.url);
      assert.equal(metrics.status, 200, "metrics stay open for scrapers");
    } finally {
      await c.proc.stop();
    }
  });
});

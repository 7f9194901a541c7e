import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/common/clock.js";
import { ServingError } from "../../src/protocol/serving-error.js";
import { CoordinatorTelemetry } from "../../src/coordinator/telemetry/coordinator-telemetry.js";
import { seedProfile } from "../../src/coordinator/scheduler/profiles.js";
import type { Decision } from "../../src/coordinator/scheduler/types.js";
import { SessionTracker } from "../../src/coordinator/fleet/session-tracker.js";
import { WorkerTable } from "../../src/coordinator/fleet/worker-table.js";
import { parseHeartbeat } from "../../src/protocol/heartbeat.js";

type MetricJson = { name: string; type: string; values: { labels: Record<string, string | number>; value: number; metricName?: string }[] };

function fixture() {
  const clock = new ManualClock(10_000);
  const table = new WorkerTable(clock, 1000);
  table.upsert(parseHeartbeat({
    worker_id: "w1", worker_url: "http://127.0.0.1:1", timestamp: 0, interval_ms: 1000,
    health: {
      alive: true, active_sessions: 2, kv_cache_bytes: 300, kv_reserved_bytes: 500,
      model: { id: "m", context_size: 100, kv_bytes_per_token: 10 }, slots: { total: 4, busy: 2 },
      limits: { max_sessions: 10, max_session_kv_bytes: 1000, max_kv_bytes: 1_000_000 },
    },
  }));
  const tracker = new SessionTracker();
  const telemetry = new CoordinatorTelemetry({ table, tracker, clock, defaultMetrics: false });
  return { clock, table, tracker, telemetry };
}

function decision(): Decision {
  const candidate = {
    id: "w1", url: "http://127.0.0.1:1", model: "m", fresh: true, healthy: true, draining: false, sessions: 0, maxSessions: 10,
    kvBytes: 0, maxKvBytes: 1000, maxSessionKvBytes: 1000, kvBytesPerToken: 10, contextSize: 100, waiting: 0, slotsTotal: 4,
  };
  const pick = { candidate, total: 0.9, scores: { sessions: 1, kv: 0.75 } };
  return { ok: true, profile: seedProfile.name, pick, runnerUp: undefined, considered: 1, dropped: {}, ranked: [pick], saturated: [], home: undefined };
}

/** Runs one request through every step: 1 ms admission, 10 ms prefill, first token at +31 ms, two more 10 ms later. */
function runRequest(f: ReturnType<typeof fixture>, id = "r1") {
  const { clock, telemetry } = f;
  const rt = telemetry.begin({ requestId: id, model: "m", maxTokens: 8 });
  clock.advance(1);
  rt.admission({ admitted: true, kvEstimateBytes: 100 }, rt.span("admission"));
  rt.scheduled(decision(), 0, rt.span("schedule"));
  const ps = rt.prefillStarted("w1", "s1");
  const t0 = clock.now();
  clock.advance(10);
  rt.prefillDone(ps, { status: "ok", prompt_tokens: 5, kv_cache_bytes: 130, cached_tokens: 2, worker_id: "w1" }, t0);
  rt.decodeStarted("w1", "s1");
  rt.streamStarted("w1", 64);
  clock.advance(20);
  rt.onFirstToken();
  rt.onTokens(1);
  clock.advance(10);
  rt.onTokens(2);
  rt.onSlowClient();
  rt.onWriteWait(30);
  rt.end({ termination: "complete", failovers: 0, tokens: 3, final: { reason: "length", promptTokens: 5, completionTokens: 3 }, error: undefined });
  return rt;
}

async function metrics(t: CoordinatorTelemetry): Promise<Map<string, MetricJson>> {
  const list = (await t.metrics.registry.getMetricsAsJSON()) as unknown as MetricJson[];
  return new Map(list.map((m) => [m.name, m]));
}

const value = (m: MetricJson | undefined, labels: Record<string, string | number> = {}, metricName?: string) =>
  m?.values.find((v) => (metricName === undefined || v.metricName === metricName) && Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;

describe("coordinator metrics", () => {
  it("expose exactly the documented names, types and label sets", async () => {
    const f = fixture();
    runRequest(f);
    f.telemetry.metrics.httpResponse("/coordinator/infer", "POST", 200);
    const m = await metrics(f.telemetry);
    const P = "inference_coordinator_";
    const expected: Record<string, [string, string[]]> = {
      http_requests_total: ["counter", ["method", "route", "status"]],
      scheduler_selections_total: ["counter", ["profile", "worker_id"]],
      admitted_total: ["counter", []],
      rejected_total: ["counter", ["reason"]],
      request_errors_total: ["counter", []],
      queue_length: ["gauge", []],
      queue_time_seconds: ["histogram", ["le"]],
      prefill_retries_total: ["counter", []],
      poison_requests_total: ["counter", []],
      poison_refusals_total: ["counter", []],
      stream_failovers_total: ["counter", []],
      worker_breaker_open: ["gauge", ["worker_id"]],
      prefill_seconds: ["histogram", ["le"]],
      streams_active: ["gauge", []],
      stream_terminations_total: ["counter", ["reason"]],
      relay_buffer_fill_ratio: ["histogram", ["le"]],
      client_write_wait_seconds: ["histogram", ["le"]],
      slow_clients_total: ["counter", []],
      time_to_first_token_seconds: ["histogram", ["le"]],
      inter_token_latency_seconds: ["histogram", ["le"]],
      e2e_request_latency_seconds: ["histogram", ["le"]],
      prompt_tokens_total: ["counter", []],
      generation_tokens_total: ["counter", []],
      sessions_active: ["gauge", []],
      kv_reserved_bytes: ["gauge", []],
      workers_alive: ["gauge", []],
      workers_routable: ["gauge", []],
      worker_up: ["gauge", ["worker_id"]],
      worker_draining: ["gauge", ["worker_id"]],
      worker_sessions: ["gauge", ["worker_id"]],
      worker_kv_cache_bytes: ["gauge", ["worker_id"]],
      worker_kv_reserved_bytes: ["gauge", ["worker_id"]],
      worker_kv_limit_bytes: ["gauge", ["worker_id"]],
      worker_tokens_per_second: ["gauge", ["worker_id"]],
    };
    assert.deepEqual([...m.keys()].sort(), Object.keys(expected).map((k) => P + k).sort());
    for (const [k, [type, labels]] of Object.entries(expected)) {
      const metric = m.get(P + k)!;
      assert.equal(metric.type, type, k);
      const seen = new Set(metric.values.flatMap((v) => Object.keys(v.labels)));
      assert.deepEqual([...seen].sort(), labels, `${k} labels`);
    }
    assert.deepEqual(m.get(`${P}stream_terminations_total`)!.values.map((v) => v.labels.reason),
      ["complete", "client_disconnect", "write_timeout", "worker_error", "buffer_overflow"]);
  });

  it("count one request's steps and latencies exactly", async () => {
    const f = fixture();
    runRequest(f);
    const m = await metrics(f.telemetry);
    const P = "inference_coordinator_";
    assert.equal(value(m.get(`${P}admitted_total`)), 1);
    assert.equal(value(m.get(`${P}scheduler_selections_total`), { worker_id: "w1", profile: "seed" }), 1);
    assert.equal(value(m.get(`${P}generation_tokens_total`)), 3);
    assert.equal(value(m.get(`${P}prompt_tokens_total`)), 5);
    assert.equal(value(m.get(`${P}stream_terminations_total`), { reason: "complete" }), 1);
    assert.equal(value(m.get(`${P}streams_active`)), 0);
    assert.equal(value(m.get(`${P}slow_clients_total`)), 1);
    assert.equal(value(m.get(`${P}time_to_first_token_seconds`), {}, `${P}time_to_first_token_seconds_sum`), 0.031);
    // The second write (2 tokens, 10 ms after the first) counts two gaps of 5 ms.
    assert.equal(value(m.get(`${P}inter_token_latency_seconds`), {}, `${P}inter_token_latency_seconds_count`), 2);
    assert.equal(value(m.get(`${P}inter_token_latency_seconds`), { le: 0.005 }, `${P}inter_token_latency_seconds_bucket`), 2);
    assert.equal(value(m.get(`${P}prefill_seconds`), {}, `${P}prefill_seconds_sum`), 0.01);
    assert.equal(value(m.get(`${P}e2e_request_latency_seconds`), {}, `${P}e2e_request_latency_seconds_sum`), 0.041);
    assert.equal(value(m.get(`${P}client_write_wait_seconds`), {}, `${P}client_write_wait_seconds_count`), 1);
    // Buffer fill at each write: 1/64 and 2/64.
    assert.equal(value(m.get(`${P}relay_buffer_fill_ratio`), {}, `${P}relay_buffer_fill_ratio_sum`), 3 / 64);
    assert.equal(value(m.get(`${P}worker_sessions`), { worker_id: "w1" }), 2);
    assert.equal(value(m.get(`${P}worker_kv_limit_bytes`), { worker_id: "w1" }), 4 * 100 * 10, "sequences × context × bytes/token < configured limit");
    assert.equal(value(m.get(`${P}workers_alive`)), 1);
  });

  it("count a capacity refusal by reason and another failure by code", async () => {
    const f = fixture();
    f.telemetry.begin({ requestId: "a", model: "m", maxTokens: 1 }).failed(new ServingError("system_sessions_full", "full"), false);
    f.telemetry.begin({ requestId: "b", model: "m", maxTokens: 1 }).failed(new ServingError("worker_failed", "down"), false);
    f.telemetry.begin({ requestId: "c", model: "m", maxTokens: 1 }).failed(new ServingError("client_closed", "client went away"), true);
    const m = await metrics(f.telemetry);
    assert.equal(value(m.get("inference_coordinator_rejected_total"), { reason: "system_sessions_full" }), 1);
    assert.equal(value(m.get("inference_coordinator_rejected_total"), { reason: "no_workers" }), 0);
    assert.equal(value(m.get("inference_coordinator_request_errors_total"), { code: "worker_failed" }), 1);
    assert.equal(value(m.get("inference_coordinator_request_errors_total"), { code: "client_closed" }), 1);
    const states = f.telemetry.recent.latest().map((r) => [r.requestId, r.state, r.outcome]);
    assert.deepEqual(states, [["c", "failed", "client_closed"], ["b", "failed", "worker_failed"], ["a", "rejected", "system_sessions_full"]]);
  });
});

describe("request timeline", () => {
  it("records every step with its offset, the scores and the end", () => {
    const f = fixture();
    const rt = runRequest(f);
    const r = rt.record.toJSON() as { events: { at_ms: number; kind: string; detail?: Record<string, unknown> }[]; state: string; tokens: number };
    assert.deepEqual(r.events.map((e) => [e.kind, e.at_ms]), [
      ["arrived", 0], ["admitted", 1], ["scheduled", 1], ["prefill_sent", 1], ["prefill_done", 11], ["first_token", 31], ["slow_client", 41], ["end", 41],
    ]);
    assert.deepEqual(r.events[2]!.detail, {
      worker_id: "w1", profile: "seed", attempt: 0, score: 0.9, scores: { sessions: 1, kv: 0.75 }, runner_up: null, considered: 1, dropped: {},
    });
    assert.deepEqual(r.events[7]!.detail, { termination: "complete", tokens_received: 3, tokens_written: 3, finish_reason: "length" });
    assert.equal(r.state, "done");
    assert.equal(r.tokens, 3);
  });

  it("keeps only the newest records, newest first", () => {
    const f = fixture();
    const cap = f.telemetry.recent.capacity;
    for (let i = 0; i < cap + 5; i++) f.telemetry.begin({ requestId: `r${i}`, model: "m", maxTokens: 1 });
    const latest = f.telemetry.recent.latest();
    assert.equal(latest.length, cap);
    assert.equal(latest[0]!.requestId, `r${cap + 4}`);
    assert.equal(latest[cap - 1]!.requestId, "r5");
    assert.equal(f.telemetry.recent.total, cap + 5);
  });
});

describe("fleet series", () => {
  it("merges whole seconds into steps and reads quantiles from them", () => {
    const f = fixture();
    const s = f.telemetry.series;
    // Seconds 100 and 101 make one 2 s step; second 102 is still running and not shown.
    s.tokens(10, 100_000);
    s.tokens(30, 101_500);
    s.ttft(0.05, 100_000);
    s.itl(0.004, 3, 101_000);
    s.finished(101_000);
    s.rejected(101_999);
    s.tokens(99, 102_000);
    const snap = s.snapshot(102_500, 2);
    assert.equal(snap.points, 150);
    assert.equal(snap.tokens_per_s.at(-1), 20);
    assert.equal(snap.finished.at(-1), 1);
    assert.equal(snap.rejected.at(-1), 1);
    assert.equal(snap.ttft_p50.at(-1), 0.05, "halfway into the (0.04, 0.06] bucket");
    assert.equal(snap.itl_p95.at(-1), 0.004875, "95% into the (0.0025, 0.005] bucket");
    assert.equal(snap.tokens_per_s.at(-2), 0);
    assert.equal(snap.ttft_p50.at(-2), null);
  });
});

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { EngineInfo } from "../../src/engine/engine.js";
import { WorkerMetrics, type WorkerMetricsView } from "../../src/worker/worker-metrics.js";

type MetricJson = { name: string; type: string; values: { labels: Record<string, string | number>; value: number; metricName?: string }[] };

const info: EngineInfo = {
  engine: "llama", modelId: "stories", modelPath: undefined, contextSize: 256, kvBytesPerToken: 640, parallel: 4,
  threads: 1, trainContextSize: 256, vocabSize: 512,
};

const view: WorkerMetricsView = {
  info, sessions: 3, maxSessions: 100, slotsBusy: 2, slotsTotal: 4, waiting: 1,
  kvHeldBytes: 64_000, kvReservedBytes: 163_840, maxKvBytes: 8 * 1024 ** 3, keptSessions: 1, keptKvBytes: 6400, draining: false,
};

function build(vllm: boolean) {
  let now = 1000;
  const m = new WorkerMetrics(() => view, () => now, { vllm, defaultMetrics: false });
  // A session created at 1000 ms: first token at 1050, the next at 1060.
  now = 1050;
  let last = m.token(1000, 0);
  now = 1060;
  last = m.token(1000, last);
  m.prefilled(12, 4, 2, 8);
  m.sessionEnded("done", 1000);
  m.sessionEnded("ttl", 1000);
  m.decodeFailed();
  m.httpResponse("/worker/prefill", "POST", 200);
  return m;
}

async function metrics(m: WorkerMetrics): Promise<Map<string, MetricJson>> {
  const list = (await m.registry.getMetricsAsJSON()) as unknown as MetricJson[];
  return new Map(list.map((x) => [x.name, x]));
}

const value = (m: MetricJson | undefined, labels: Record<string, string | number> = {}, metricName?: string) =>
  m?.values.find((v) => (metricName === undefined || v.metricName === metricName) && Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;

const OWN: Record<string, [string, string[]]> = {
  inference_worker_http_requests_total: ["counter", ["method", "route", "status"]],
  inference_worker_sessions: ["gauge", []],
  inference_worker_sessions_limit: ["gauge", []],
  inference_worker_slots_busy: ["gauge", []],
  inference_worker_slots: ["gauge", []],
  inference_worker_sessions_waiting: ["gauge", []],
  inference_worker_kv_cache_bytes: ["gauge", []],
  inference_worker_kv_reserved_bytes: ["gauge", []],
  inference_worker_kv_limit_bytes: ["gauge", []],
  inference_worker_kept_sessions: ["gauge", []],
  inference_worker_kept_kv_bytes: ["gauge", []],
  inference_worker_kv_tier_host_bytes: ["gauge", []],
  inference_worker_kv_tier_host_limit_bytes: ["gauge", []],
  inference_worker_kv_tier_disk_bytes: ["gauge", []],
  inference_worker_kv_tier_disk_limit_bytes: ["gauge", []],
  inference_worker_kv_tier_restores_host_total: ["counter", []],
  inference_worker_kv_tier_restores_disk_total: ["counter", []],
  inference_worker_kv_tier_discarded_total: ["counter", []],
  inference_worker_draining: ["gauge", []],
  inference_worker_decode_tokens_per_second: ["gauge", []],
  inference_worker_prompt_tokens_total: ["counter", []],
  inference_worker_generation_tokens_total: ["counter", []],
  inference_worker_prefix_cache_queries_total: ["counter", []],
  inference_worker_prefix_cache_hits_total: ["counter", []],
  inference_worker_decode_failures_total: ["counter", []],
  inference_worker_session_ends_total: ["counter", ["reason"]],
  inference_worker_prefill_seconds: ["histogram", ["le"]],
  inference_worker_slot_wait_seconds: ["histogram", ["le"]],
  inference_worker_time_to_first_token_seconds: ["histogram", ["le"]],
  inference_worker_inter_token_latency_seconds: ["histogram", ["le"]],
  inference_worker_e2e_request_latency_seconds: ["histogram", ["le"]],
};

const VLLM: Record<string, [string, string[]]> = {
  "vllm:num_requests_running": ["gauge", ["model_name"]],
  "vllm:num_requests_waiting": ["gauge", ["model_name"]],
  "vllm:kv_cache_usage_perc": ["gauge", ["model_name"]],
  "vllm:prefix_cache_queries_total": ["counter", ["model_name"]],
  "vllm:prefix_cache_hits_total": ["counter", ["model_name"]],
  "vllm:time_to_first_token_seconds": ["histogram", ["le", "model_name"]],
  "vllm:inter_token_latency_seconds": ["histogram", ["le", "model_name"]],
  "vllm:e2e_request_latency_seconds": ["histogram", ["le", "model_name"]],
  "vllm:prompt_tokens_total": ["counter", ["model_name"]],
  "vllm:generation_tokens_total": ["counter", ["model_name"]],
};

function assertShapes(m: Map<string, MetricJson>, expected: Record<string, [string, string[]]>): void {
  assert.deepEqual([...m.keys()].sort(), Object.keys(expected).sort());
  for (const [name, [type, labels]] of Object.entries(expected)) {
    assert.equal(m.get(name)!.type, type, name);
    assert.deepEqual([...new Set(m.get(name)!.values.flatMap((v) => Object.keys(v.labels)))].sort(), labels, `${name} labels`);
  }
}

describe("worker metrics", () => {
  it("expose our names and, by default, vLLM's with a model_name label", async () => {
    assertShapes(await metrics(build(true)), { ...OWN, ...VLLM });
  });

  it("drop vLLM's names when asked", async () => {
    assertShapes(await metrics(build(false)), OWN);
  });

  it("count tokens, latencies, prefix reuse and session ends exactly", async () => {
    const m = await metrics(build(true));
    assert.equal(value(m.get("inference_worker_generation_tokens_total")), 2);
    assert.equal(value(m.get("vllm:generation_tokens_total"), { model_name: "stories" }), 2);
    assert.equal(value(m.get("vllm:prompt_tokens_total")), 12);
    assert.equal(value(m.get("vllm:prefix_cache_queries_total")), 12);
    assert.equal(value(m.get("vllm:prefix_cache_hits_total")), 4);
    assert.equal(value(m.get("vllm:time_to_first_token_seconds"), {}, "vllm:time_to_first_token_seconds_sum"), 0.05);
    assert.equal(value(m.get("vllm:inter_token_latency_seconds"), {}, "vllm:inter_token_latency_seconds_sum"), 0.01);
    // e2e counts the session that decoded ("done"), not the one that idled out ("ttl").
    assert.equal(value(m.get("vllm:e2e_request_latency_seconds"), {}, "vllm:e2e_request_latency_seconds_count"), 1);
    assert.equal(value(m.get("inference_worker_session_ends_total"), { reason: "ttl" }), 1);
    assert.equal(value(m.get("inference_worker_session_ends_total"), { reason: "drain" }), 0);
    assert.equal(value(m.get("inference_worker_decode_failures_total")), 1);
    assert.equal(value(m.get("inference_worker_prefill_seconds"), {}, "inference_worker_prefill_seconds_sum"), 0.008);
    assert.equal(value(m.get("vllm:num_requests_running")), 2);
    assert.equal(value(m.get("vllm:num_requests_waiting")), 1);
    // Limit: 4 sequences × 256 tokens × 640 bytes (below the 8 GiB configured).
    assert.equal(value(m.get("inference_worker_kv_limit_bytes")), 655_360);
    assert.equal(value(m.get("vllm:kv_cache_usage_perc")), 0.25);
    assert.equal(value(m.get("inference_worker_decode_tokens_per_second")), 2, "2 tokens within the first second");
  });
});

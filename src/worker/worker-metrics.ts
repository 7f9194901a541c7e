import { Counter, Registry } from "prom-client";
import { BucketHistogram, E2E_BUCKETS_S, ITL_BUCKETS_S, STEP_BUCKETS_S, TTFT_BUCKETS_S } from "../common/bucket-histogram.js";
import { labelled, registerHistogram, registerProcessMetrics, registerScrapeMetric, type Sample, type ScrapeRead } from "../common/prom-export.js";
import { RateWindow } from "../common/rate-window.js";
import type { KvTierHealth } from "../protocol/heartbeat.js";
import type { EngineInfo } from "../engine/engine.js";
import { effectiveKvLimitBytes } from "../protocol/kv-capacity.js";
import type { EndReason } from "./session-table.js";

/**
 * A worker's Prometheus metrics (`GET /metrics`). Gauges are read at scrape time from the session
 * table and slot pool (one source of truth); the hot path (one call per generated token) updates
 * plain numbers and BucketHistograms and allocates nothing.
 *
 * With `vllm` on, the same values are also exposed under vLLM's names (`vllm:…`, label
 * `model_name`), which autoscalers and routers already read. Those names hold a colon, which
 * `promtool check metrics` reports as a lint finding (colons are meant for recording rules); set
 * VLLM_METRICS=false for a scrape that lints clean.
 */
export interface WorkerMetricsView {
  readonly info: EngineInfo;
  readonly sessions: number;
  readonly maxSessions: number;
  /** Sessions holding an engine sequence (prefilling, prefilled or decoding). */
  readonly slotsBusy: number;
  readonly slotsTotal: number;
  /** Sessions admitted and waiting for a free sequence. */
  readonly waiting: number;
  readonly kvHeldBytes: number;
  readonly kvReservedBytes: number;
  readonly maxKvBytes: number;
  /** Conversations whose KV stays on a sequence between turns (evicted first when room is needed). */
  readonly keptSessions: number;
  readonly keptKvBytes: number;
  readonly draining: boolean;
  /** KV tiers, when on (their bytes are not part of the KV figures above). */
  readonly kvTiers?: KvTierHealth;
}

export const END_REASONS: readonly EndReason[] = ["done", "cancelled", "disconnect", "error", "ttl", "unclaimed", "drain", "prefill_failed"];
const DECODE_ENDS = new Set<EndReason>(["done", "cancelled", "disconnect", "error"]);

const effectiveKvLimit = (v: WorkerMetricsView): number =>
  effectiveKvLimitBytes(v.maxKvBytes, v.slotsTotal, v.info.contextSize, v.info.kvBytesPerToken);

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly ttft = new BucketHistogram(TTFT_BUCKETS_S);
  readonly itl = new BucketHistogram(ITL_BUCKETS_S);
  readonly e2e = new BucketHistogram(E2E_BUCKETS_S);
  readonly prefill = new BucketHistogram(STEP_BUCKETS_S);
  readonly slotWait = new BucketHistogram(STEP_BUCKETS_S);
  readonly decodeRate = new RateWindow(10);
  promptTokens = 0;
  generationTokens = 0;
  prefixQueries = 0;
  prefixHits = 0;
  decodeFailures = 0;
  private readonly ends = new Map<EndReason, number>(END_REASONS.map((r) => [r, 0]));
  private readonly http: Counter<"route" | "method" | "status">;

  constructor(
    private readonly view: () => WorkerMetricsView,
    private readonly now: () => number,
    o: { vllm: boolean; defaultMetrics?: boolean },
  ) {
    const r = this.registry;
    if (o.defaultMetrics !== false) registerProcessMetrics(r);
    this.http = new Counter({
      name: "inference_worker_http_requests_total", help: "HTTP requests answered by this worker, by route, method and status",
      labelNames: ["route", "method", "status"], registers: [r],
    });
    const gauge = (name: string, help: string, read: ScrapeRead) => registerScrapeMetric(r, { name, help, type: "gauge", read });
    const counter = (name: string, help: string, read: ScrapeRead) => registerScrapeMetric(r, { name, help, type: "counter", read });
    const hist = (name: string, help: string, h: BucketHistogram) => registerHistogram(r, { name, help, read: () => h });

    gauge("inference_worker_sessions", "Sessions this worker holds (prefilling, prefilled or decoding)", () => view().sessions);
    gauge("inference_worker_sessions_limit", "Sessions this worker may hold at once", () => view().maxSessions);
    gauge("inference_worker_slots_busy", "Engine sequences holding a session", () => view().slotsBusy);
    gauge("inference_worker_slots", "Engine sequences (sessions decoded together in one batch)", () => view().slotsTotal);
    gauge("inference_worker_sessions_waiting", "Admitted sessions waiting for a free engine sequence", () => view().waiting);
    gauge("inference_worker_kv_cache_bytes", "KV cache bytes held by sessions now (prompt and generated tokens)", () => view().kvHeldBytes);
    gauge("inference_worker_kv_reserved_bytes", "KV cache bytes reserved by admitted sessions (prompt + max_tokens each)", () => view().kvReservedBytes);
    gauge("inference_worker_kv_limit_bytes", "KV cache bytes this worker can hold: its limit, or its sequences' contexts when smaller", () => effectiveKvLimit(view()));
    gauge("inference_worker_kept_sessions", "Conversations whose KV is kept between turns", () => view().keptSessions);
    gauge("inference_worker_kept_kv_bytes", "KV cache bytes kept for conversations between turns (evictable)", () => view().keptKvBytes);
    gauge("inference_worker_kv_tier_host_bytes", "Bytes the host-memory KV tier holds (conversations saved out of their slot)", () => view().kvTiers?.host_bytes ?? 0);
    gauge("inference_worker_kv_tier_host_limit_bytes", "Byte limit of the host-memory KV tier (0: off)", () => view().kvTiers?.host_limit_bytes ?? 0);
    gauge("inference_worker_kv_tier_disk_bytes", "Bytes the disk KV tier holds", () => view().kvTiers?.disk_bytes ?? 0);
    gauge("inference_worker_kv_tier_disk_limit_bytes", "Byte limit of the disk KV tier (0: off)", () => view().kvTiers?.disk_limit_bytes ?? 0);
    counter("inference_worker_kv_tier_restores_host_total", "Conversations restored from the host-memory KV tier", () => view().kvTiers?.restored_host ?? 0);
    counter("inference_worker_kv_tier_restores_disk_total", "Conversations restored from the disk KV tier", () => view().kvTiers?.restored_disk ?? 0);
    counter("inference_worker_kv_tier_discarded_total", "KV tier files refused (corrupt, truncated, foreign) and deleted", () => view().kvTiers?.discarded ?? 0);
    gauge("inference_worker_draining", "1 while the worker refuses new sessions and finishes running ones", () => (view().draining ? 1 : 0));
    gauge("inference_worker_decode_tokens_per_second", "Tokens generated per second over the last 10 s", () => this.decodeRate.rate(now()));
    counter("inference_worker_prompt_tokens_total", "Prompt tokens prefilled", () => this.promptTokens);
    counter("inference_worker_generation_tokens_total", "Tokens generated", () => this.generationTokens);
    counter("inference_worker_prefix_cache_queries_total", "Prompt tokens looked up in the sequences' KV cache (prefix reuse)", () => this.prefixQueries);
    counter("inference_worker_prefix_cache_hits_total", "Prompt tokens whose KV was already held and reused", () => this.prefixHits);
    counter("inference_worker_decode_failures_total", "Decodes that failed in the engine", () => this.decodeFailures);
    counter("inference_worker_session_ends_total", "Sessions ended, by reason", labelled(["reason"], () => [...this.ends].map(([reason, n]): Sample => [{ reason }, n])));
    hist("inference_worker_prefill_seconds", "Prefill compute time (after a sequence was free)", this.prefill);
    hist("inference_worker_slot_wait_seconds", "Time an admitted session waited for a free engine sequence", this.slotWait);
    hist("inference_worker_time_to_first_token_seconds", "From prefill request arrival to the first generated token", this.ttft);
    hist("inference_worker_inter_token_latency_seconds", "Time between consecutive generated tokens of a session", this.itl);
    hist("inference_worker_e2e_request_latency_seconds", "From prefill request arrival to the session's end, for sessions that decoded", this.e2e);
    if (o.vllm) this.registerVllm(view);
  }

  private registerVllm(view: () => WorkerMetricsView): void {
    const r = this.registry;
    const model = (): { model_name: string } => ({ model_name: view().info.modelId });
    const one = (read: () => number) => labelled(["model_name"], (): Sample[] => [[model(), read()]]);
    const gauge = (name: string, help: string, read: () => number) => registerScrapeMetric(r, { name, help, type: "gauge", read: one(read) });
    const counter = (name: string, help: string, read: () => number) => registerScrapeMetric(r, { name, help, type: "counter", read: one(read) });
    const hist = (name: string, help: string, h: BucketHistogram) => registerHistogram(r, { name, help, read: () => [[model(), h]] });
    gauge("vllm:num_requests_running", "Requests holding an engine sequence (vLLM name)", () => view().slotsBusy);
    gauge("vllm:num_requests_waiting", "Requests waiting for an engine sequence (vLLM name)", () => view().waiting);
    gauge("vllm:kv_cache_usage_perc", "KV cache usage as a fraction, 1 = full: reserved bytes / limit (vLLM name)", () => {
      const v = view();
      const limit = effectiveKvLimit(v);
      return limit > 0 ? Math.min(1, v.kvReservedBytes / limit) : 0;
    });
    counter("vllm:prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache (vLLM name)", () => this.prefixQueries);
    counter("vllm:prefix_cache_hits_total", "Prompt tokens found in the prefix cache (vLLM name)", () => this.prefixHits);
    counter("vllm:prompt_tokens_total", "Prompt tokens prefilled (vLLM name)", () => this.promptTokens);
    counter("vllm:generation_tokens_total", "Tokens generated (vLLM name)", () => this.generationTokens);
    hist("vllm:time_to_first_token_seconds", "Time to first token (vLLM name)", this.ttft);
    hist("vllm:inter_token_latency_seconds", "Inter-token latency (vLLM name)", this.itl);
    hist("vllm:e2e_request_latency_seconds", "End-to-end request latency (vLLM name)", this.e2e);
  }

  httpResponse(route: string, method: string, status: number): void {
    this.http.inc({ route, method, status: String(status) });
  }

  /** A prefill finished: `slotWaitMs` queued for a sequence, then `prefillMs` of compute. */
  prefilled(promptTokens: number, reusedTokens: number, slotWaitMs: number, prefillMs: number): void {
    this.promptTokens += promptTokens;
    this.prefixQueries += promptTokens;
    this.prefixHits += reusedTokens;
    this.slotWait.observe(slotWaitMs / 1000);
    this.prefill.observe(prefillMs / 1000);
  }

  /**
   * One generated token of a session that started at `createdMs` and last produced one at
   * `prevMs` (0 before its first). Returns now, the next call's `prevMs`. No allocation.
   */
  token(createdMs: number, prevMs: number): number {
    const now = this.now();
    if (prevMs === 0) this.ttft.observe((now - createdMs) / 1000);
    else this.itl.observe((now - prevMs) / 1000);
    this.generationTokens++;
    this.decodeRate.add(1, now);
    return now;
  }

  decodeFailed(): void {
    this.decodeFailures++;
  }

  sessionEnded(reason: EndReason, createdMs: number): void {
    this.ends.set(reason, (this.ends.get(reason) ?? 0) + 1);
    if (DECODE_ENDS.has(reason)) this.e2e.observe((this.now() - createdMs) / 1000);
  }
}

import { Registry } from "prom-client";
import { BucketHistogram, E2E_BUCKETS_S, ITL_BUCKETS_S, STEP_BUCKETS_S, TTFT_BUCKETS_S } from "../../common/bucket-histogram.js";
import { labelled, registerHistogram, registerProcessMetrics, registerScrapeMetric, type Sample, type ScrapeRead } from "../../common/prom-export.js";
import { effectiveKvLimitBytes } from "../../protocol/kv-capacity.js";
import type { Termination } from "../stream/relay.js";
import type { SessionTracker } from "../fleet/session-tracker.js";
import type { WorkerEntry, WorkerTable } from "../fleet/worker-table.js";

/**
 * The coordinator's Prometheus metrics (`GET /metrics`). Fleet gauges are read at scrape time from
 * the worker table and the session tracker; counts that the dashboard also shows live here as plain
 * numbers and maps (one source for both); per-token paths touch only numbers and BucketHistograms.
 * Names start with `inference_coordinator_`; latencies are in seconds.
 */
export const TERMINATIONS: readonly Termination[] = ["complete", "client_disconnect", "write_timeout", "worker_error", "buffer_overflow"];
/** Admission's reasons, listed at zero from the start so that alerts see the series before the first rejection. */
export const ADMISSION_REASONS = ["no_workers", "system_sessions_full", "system_kv_cache_full"] as const;
/** Relay buffer fill ratio (tokens in the buffer / its capacity) at each client write. */
export const FILL_BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1, 2, 4];

export interface CoordinatorMetricsSources {
  table: WorkerTable;
  tracker: SessionTracker;
  /** Monotonic ms. */
  now(): number;
  /** Requests waiting in the admission queue. */
  queueLength(): number;
  /** Tokens per second relayed from each worker, as the dashboard shows. */
  workerTokenRate(workerId: string): number;
}

export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly ttft = new BucketHistogram(TTFT_BUCKETS_S);
  readonly itl = new BucketHistogram(ITL_BUCKETS_S);
  readonly e2e = new BucketHistogram(E2E_BUCKETS_S);
  readonly queueTime = new BucketHistogram(STEP_BUCKETS_S);
  readonly prefill = new BucketHistogram(STEP_BUCKETS_S);
  readonly bufferFill = new BucketHistogram(FILL_BUCKETS);
  readonly writeWait = new BucketHistogram(STEP_BUCKETS_S);
  admitted = 0;
  readonly rejected = new Map<string, number>(ADMISSION_REASONS.map((r) => [r, 0]));
  readonly errors = new Map<string, number>();
  readonly terminations = new Map<Termination, number>(TERMINATIONS.map((t) => [t, 0]));
  retries = 0;
  failovers = 0;
  /** Requests on which two workers died (remembered as poison), and identical requests refused since. */
  poisonRequests = 0;
  poisonRefusals = 0;
  slowClients = 0;
  streamsActive = 0;
  promptTokens = 0;
  generationTokens = 0;
  /** HTTP answers and scheduler picks by label set, counted as plain numbers (no label hashing per request). */
  private readonly http = new Map<string, { labels: Record<"route" | "method" | "status", string>; n: number }>();
  private readonly selections = new Map<string, { labels: Record<"worker_id" | "profile", string>; n: number }>();

  constructor(s: CoordinatorMetricsSources, o: { defaultMetrics?: boolean } = {}) {
    const r = this.registry;
    if (o.defaultMetrics !== false) registerProcessMetrics(r);
    const P = "inference_coordinator_";
    const gauge = (name: string, help: string, read: ScrapeRead) => registerScrapeMetric(r, { name: P + name, help, type: "gauge", read });
    const counter = (name: string, help: string, read: ScrapeRead) => registerScrapeMetric(r, { name: P + name, help, type: "counter", read });
    const hist = (name: string, help: string, h: BucketHistogram) => registerHistogram(r, { name: P + name, help, read: () => h });
    const byLabel = (label: string, m: ReadonlyMap<string, number>) => labelled([label], () => [...m].map(([k, v]): Sample => [{ [label]: k }, v]));
    const perWorker = (read: (e: WorkerEntry) => number) => labelled(["worker_id"], () => s.table.list().map((e): Sample => [{ worker_id: e.id }, read(e)]));

    const counts = <L extends string>(labelNames: L[], m: Map<string, { labels: Record<L, string>; n: number }>) =>
      labelled(labelNames, () => [...m.values()].map((c): Sample => [c.labels, c.n]));
    counter("http_requests_total", "HTTP requests answered, by route, method and status", counts(["route", "method", "status"], this.http));
    counter("scheduler_selections_total", "Workers picked by the scheduler, by worker and profile (retries included)", counts(["worker_id", "profile"], this.selections));
    counter("admitted_total", "Requests admitted", () => this.admitted);
    counter("rejected_total", "Requests refused before any token for capacity (503) or rate (429), by reason", byLabel("reason", this.rejected));
    counter("request_errors_total", "Requests that failed before streaming for another cause, by error code", byLabel("code", this.errors));
    gauge("queue_length", "Requests waiting for admission", () => s.queueLength());
    hist("queue_time_seconds", "Time from arrival to the admission decision", this.queueTime);
    counter("prefill_retries_total", "Prefill attempts on another worker after a failure", () => this.retries);
    counter("poison_requests_total", "Requests on which two workers died: answered 502 request_crashed_worker and remembered", () => this.poisonRequests);
    counter("poison_refusals_total", "Requests refused at once because an identical request made workers die", () => this.poisonRefusals);
    counter("stream_failovers_total", "Streams continued on another worker after theirs failed or stalled mid-decode", () => this.failovers);
    gauge("worker_breaker_open", "1 while a worker's circuit breaker is open (0 closed, 0.5 half-open)",
      perWorker((e) => ({ closed: 0, half_open: 0.5, open: 1 })[e.breaker.state(s.now())]));
    hist("prefill_seconds", "Prefill requests to workers, as the coordinator timed them", this.prefill);
    gauge("streams_active", "Requests generating now (streams, and answers collected into one body)", () => this.streamsActive);
    counter("stream_terminations_total", "Streams ended, by reason", byLabel("reason", this.terminations));
    hist("relay_buffer_fill_ratio", "Tokens waiting in a stream's relay buffer / its capacity, at each client write", this.bufferFill);
    hist("client_write_wait_seconds", "How long a client's full socket took to drain (writes that had to wait)", this.writeWait);
    counter("slow_clients_total", "Streams whose client read slower than tokens came (relay buffer full, worker paused)", () => this.slowClients);
    hist("time_to_first_token_seconds", "From request arrival to the first token written to the client", this.ttft);
    hist("inter_token_latency_seconds", "Time between tokens written to a client (a write of n tokens counts n gaps of 1/n)", this.itl);
    hist("e2e_request_latency_seconds", "From request arrival to the stream's end", this.e2e);
    counter("prompt_tokens_total", "Prompt tokens of served requests, as the workers counted them", () => this.promptTokens);
    counter("generation_tokens_total", "Tokens generated for clients (streamed or collected)", () => this.generationTokens);
    gauge("sessions_active", "Sessions (leases) from dispatch to stream end", () => s.tracker.count);
    gauge("kv_reserved_bytes", "KV bytes reserved by live sessions", () => s.tracker.kvReservedBytes);
    gauge("workers_alive", "Workers with a fresh heartbeat that report alive", () => {
      const now = s.now();
      return s.table.list().filter((e) => s.table.isFresh(e, now) && e.health.alive).length;
    });
    gauge("workers_routable", "Workers the scheduler may pick (fresh, healthy, not draining)", () => s.table.capacity().routable);
    gauge("worker_up", "1 when the worker is routable, 0 otherwise", perWorker((e) => (s.table.isRoutable(e, s.now()) ? 1 : 0)));
    gauge("worker_draining", "1 when the worker reported draining", perWorker((e) => (e.health.draining ? 1 : 0)));
    gauge("worker_sessions", "Sessions on the worker, as last reported", perWorker((e) => e.health.active_sessions));
    gauge("worker_kv_cache_bytes", "KV bytes held on the worker, as last reported", perWorker((e) => e.health.kv_cache_bytes));
    gauge("worker_kv_reserved_bytes", "KV bytes reserved on the worker, as last reported", perWorker((e) => e.health.kv_reserved_bytes));
    gauge("worker_kv_limit_bytes", "KV bytes the worker can hold, as last reported", perWorker(workerKvLimit));
    gauge("worker_tokens_per_second", "Tokens per second relayed from the worker over the last 10 s", perWorker((e) => s.workerTokenRate(e.id)));
  }

  httpResponse(route: string, method: string, status: number): void {
    const key = `${status} ${method} ${route}`;
    const c = this.http.get(key);
    if (c !== undefined) c.n++;
    else this.http.set(key, { labels: { route, method, status: String(status) }, n: 1 });
  }

  selected(workerId: string, profile: string): void {
    const key = `${profile} ${workerId}`;
    const c = this.selections.get(key);
    if (c !== undefined) c.n++;
    else this.selections.set(key, { labels: { worker_id: workerId, profile }, n: 1 });
  }
}

export function workerKvLimit(e: WorkerEntry): number {
  const h = e.health;
  return effectiveKvLimitBytes(h.limits.max_kv_bytes, h.slots.total, h.model.context_size, h.model.kv_bytes_per_token);
}

export function bump<K>(m: Map<K, number>, key: K, n = 1): void {
  m.set(key, (m.get(key) ?? 0) + n);
}

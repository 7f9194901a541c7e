import type { Clock } from "../../common/clock.js";
import type { CoordinatorConfig } from "../../common/config.js";
import { workerKvLimit } from "./coordinator-metrics.js";
import type { CoordinatorTelemetry } from "./coordinator-telemetry.js";
import type { SessionTracker } from "../fleet/session-tracker.js";
import type { WorkerTable } from "../fleet/worker-table.js";

/**
 * The dashboard's JSON (`GET /dashboard/api/state`): the fleet as this coordinator sees it now,
 * read from the same objects that metrics and scheduling read. Built per poll (about once a second
 * per open dashboard), never on a request's path.
 */
export interface DashboardDeps {
  table: WorkerTable;
  tracker: SessionTracker;
  telemetry: CoordinatorTelemetry;
  config: CoordinatorConfig;
  clock: Clock;
  startedMs: number;
}

/** Recent requests sent per poll. */
const RECENT_LIMIT = 40;

export function dashboardState(d: DashboardDeps): Record<string, unknown> {
  const { table, tracker, telemetry, config, clock } = d;
  const now = clock.now();
  const m = telemetry.metrics;
  let fleetRate = 0;
  const workers = table.list().map((e) => {
    const h = e.health;
    const load = table.load(e, tracker.load(e.id));
    const rate = telemetry.workerTokenRate(e.id);
    const breaker = e.breaker.state(now);
    fleetRate += rate;
    return {
      worker_id: e.id, url: e.url, model: h.model.id, engine: h.engine,
      fresh: table.isFresh(e, now), healthy: breaker !== "open" && h.alive, breaker, routable: table.isRoutable(e, now),
      draining: h.draining, expired: e.expired,
      // The scheduler's view: this coordinator's live sessions plus others' as of the last heartbeat.
      sessions: load.sessions, max_sessions: h.limits.max_sessions,
      running: h.running, waiting: h.waiting, slots_total: h.slots.total,
      kv_reserved_bytes: load.kvBytes, kv_held_bytes: h.kv_cache_bytes, kv_limit_bytes: workerKvLimit(e),
      // KV tiers (host memory, disk): their own bytes and limits, apart from the slot KV above.
      kv_tiers: h.kv_tiers === undefined ? null : {
        host_bytes: h.kv_tiers.host_bytes, host_limit_bytes: h.kv_tiers.host_limit_bytes,
        disk_bytes: h.kv_tiers.disk_bytes, disk_limit_bytes: h.kv_tiers.disk_limit_bytes,
      },
      tokens_per_s: round(rate), threads: h.threads, last_heartbeat_ms_ago: Math.round(now - e.lastSeenMs),
    };
  });
  const cap = table.capacity();
  const q = (h: typeof m.ttft, p: number) => {
    const v = h.quantile(p);
    return v === undefined ? null : round(v);
  };
  return {
    now: clock.wallNow(),
    uptime_s: Math.round((now - d.startedMs) / 1000),
    fleet: {
      workers: workers.length, routable: cap.routable, sessions: tracker.count, kv_reserved_bytes: tracker.kvReservedBytes,
      max_sessions: Math.min(config.systemMaxSessions, cap.maxSessions), max_kv_bytes: Math.min(config.systemMaxKvBytes, cap.maxKvBytes),
      streams_active: m.streamsActive, tokens_per_s: round(fleetRate), models: table.models(),
    },
    // QUEUE_SIZE 0: no queue, requests beyond capacity are refused at once (503).
    queue: { length: telemetry.queueLength(), enabled: config.queueSize > 0 },
    totals: {
      requests: telemetry.recent.total, admitted: m.admitted, prompt_tokens: m.promptTokens, generation_tokens: m.generationTokens,
      retries: m.retries, slow_clients: m.slowClients,
      rejected: Object.fromEntries(m.rejected), errors: Object.fromEntries(m.errors), terminations: Object.fromEntries(m.terminations),
    },
    latency: { ttft_p50: q(m.ttft, 0.5), ttft_p95: q(m.ttft, 0.95), itl_p50: q(m.itl, 0.5), itl_p95: q(m.itl, 0.95), e2e_p50: q(m.e2e, 0.5) },
    series: telemetry.series.snapshot(now, 2),
    workers,
    recent: telemetry.recent.latest(RECENT_LIMIT),
  };
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

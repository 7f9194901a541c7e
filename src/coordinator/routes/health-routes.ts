import type { Clock } from "../../common/clock.js";
import type { CoordinatorConfig } from "../../common/config.js";
import { sendJson, type HttpServer } from "../../common/http-server.js";
import { parseHeartbeat, type HeartbeatAck } from "../../protocol/heartbeat.js";
import type { AdmissionQueue } from "../admission/admission-queue.js";
import type { HeartbeatAdmission } from "../fleet/heartbeat-admission.js";
import type { InferencePipeline } from "../pipeline/inference-pipeline.js";
import type { PrefixIndex } from "../fleet/prefix-index.js";
import type { SessionTracker } from "../fleet/session-tracker.js";
import type { WorkerTable } from "../fleet/worker-table.js";

/**
 * The seed's health API: the coordinator's own state, the worker table, and the heartbeat sink
 * (which also feeds the prefix index and answers with its ack). Added: `/coordinator/health/routing`,
 * the scheduler's recent decisions, the admission queue and the prefix index, read-only.
 */
export interface HealthRoutesDeps {
  table: WorkerTable;
  tracker: SessionTracker;
  config: CoordinatorConfig;
  clock: Clock;
  startedMs: number;
  index: PrefixIndex;
  queue: AdmissionQueue;
  pipeline: InferencePipeline;
  admission: HeartbeatAdmission;
}

export function registerHealthRoutes(server: HttpServer, deps: HealthRoutesDeps): void {
  const { table, tracker, config, clock, index, queue } = deps;
  server.route("GET", "/coordinator/health", (ctx) => {
    const cap = table.capacity();
    sendJson(ctx.res, 200, {
      status: cap.routable > 0 ? "ok" : "no_workers",
      alive: true,
      workers: { known: table.list().length, routable: cap.routable },
      active_sessions: tracker.count,
      kv_cache_bytes: tracker.kvReservedBytes,
      models: table.models(),
      scheduler: { profile: deps.pipeline.profile.name, prefix_index: index.snapshot() },
      queue: queue.snapshot(),
      limits: {
        system_max_sessions: config.systemMaxSessions,
        system_max_kv_bytes: config.systemMaxKvBytes,
        fleet_max_sessions: cap.maxSessions,
        fleet_max_kv_bytes: cap.maxKvBytes,
      },
      uptime_s: Math.round((clock.now() - deps.startedMs) / 1000),
    });
  });

  /**
   * Readiness, for load balancers and Kubernetes: 200 while this coordinator can route (at least
   * one routable worker) and is not draining, else 503, so traffic moves to the other coordinators.
   * Liveness is `/coordinator/health`, which stays 200 while draining.
   */
  server.route("GET", "/coordinator/ready", (ctx) => {
    const routable = table.capacity().routable;
    const draining = deps.pipeline.draining;
    const ready = routable > 0 && !draining;
    sendJson(ctx.res, ready ? 200 : 503, { ready, draining, routable_workers: routable });
  });

  server.route("GET", "/coordinator/health/workers", (ctx) => {
    const now = clock.now();
    const workers = table.list().map((e) => ({
      ...e.health,
      worker_id: e.id,
      worker_url: e.url,
      fresh: table.isFresh(e, now),
      healthy: e.breaker.state(now) !== "open",
      breaker: e.breaker.state(now),
      routable: table.isRoutable(e, now),
      last_heartbeat_ms_ago: Math.round(now - e.lastSeenMs),
      dispatched_sessions: tracker.load(e.id).sessions,
      indexed_cache_entries: index.entriesOf(e.id).size,
    }));
    sendJson(ctx.res, 200, { workers });
  });

  server.route("GET", "/coordinator/health/routing", (ctx) => {
    sendJson(ctx.res, 200, {
      profile: deps.pipeline.profile.name,
      queue: queue.snapshot(),
      prefix_index: index.snapshot(),
      recent: deps.pipeline.routes.recent(),
    });
  });

  /** What the prefix index holds per worker: entry id → block keys (compare with each `GET /worker/cache`). */
  server.route("GET", "/coordinator/health/prefix-index", (ctx) => {
    const workers: Record<string, Record<string, readonly string[]>> = {};
    for (const e of table.list()) workers[e.id] = Object.fromEntries(index.entriesOf(e.id));
    sendJson(ctx.res, 200, { ...index.snapshot(), workers });
  });

  server.route("POST", "/coordinator/health/heartbeat", async (ctx) => {
    const parsed = parseHeartbeat(await ctx.readJson());
    const known = table.get(parsed.worker_id);
    const hb = { ...parsed, interval_ms: deps.admission.check(parsed, table, config.heartbeatIntervalMs) };
    if (known !== undefined && known.url !== hb.worker_url) ctx.log.warn({ worker_id: hb.worker_id, from: known.url, to: hb.worker_url }, "worker.url_changed");
    table.upsert(hb, tracker.load(hb.worker_id));
    if (known === undefined || known.expired) ctx.log.info({ worker_id: hb.worker_id, worker_url: hb.worker_url, model: hb.health.model.id }, "worker.joined");
    const ack: HeartbeatAck = { status: "ok" };
    if (hb.cache !== undefined) ack.cache = config.prefixIndexMaxBlocks > 0 ? index.apply(hb.worker_id, hb.cache) : { epoch: hb.cache.epoch, seq: hb.cache.seq };
    sendJson(ctx.res, 200, ack);
    // A beat may report freed capacity (sessions ended on the worker): the queue's first may look.
    queue.kick();
  });
}

import type { Clock } from "../common/clock.js";
import type { CoordinatorConfig } from "../common/config.js";
import { sendJson, type HttpServer } from "../common/http-server.js";
import { parseHeartbeat } from "../protocol/heartbeat.js";
import type { SessionTracker } from "./session-tracker.js";
import type { WorkerTable } from "./worker-table.js";

/** The seed's health API: the coordinator's own state, the worker table, and the heartbeat sink. */
export function registerHealthRoutes(
  server: HttpServer,
  deps: { table: WorkerTable; tracker: SessionTracker; config: CoordinatorConfig; clock: Clock; startedMs: number },
): void {
  const { table, tracker, config, clock } = deps;
  server.route("GET", "/coordinator/health", (ctx) => {
    const cap = table.capacity();
    sendJson(ctx.res, 200, {
      status: cap.routable > 0 ? "ok" : "no_workers",
      alive: true,
      workers: { known: table.list().length, routable: cap.routable },
      active_sessions: tracker.count,
      kv_cache_bytes: tracker.kvReservedBytes,
      models: table.models(),
      limits: {
        system_max_sessions: config.systemMaxSessions,
        system_max_kv_bytes: config.systemMaxKvBytes,
        fleet_max_sessions: cap.maxSessions,
        fleet_max_kv_bytes: cap.maxKvBytes,
      },
      uptime_s: Math.round((clock.now() - deps.startedMs) / 1000),
    });
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
    }));
    sendJson(ctx.res, 200, { workers });
  });

  server.route("POST", "/coordinator/health/heartbeat", async (ctx) => {
    const hb = parseHeartbeat(await ctx.readJson());
    const known = table.get(hb.worker_id);
    table.upsert(hb, tracker.load(hb.worker_id));
    if (known === undefined || known.expired) ctx.log.info({ worker_id: hb.worker_id, worker_url: hb.worker_url, model: hb.health.model.id }, "worker.joined");
    sendJson(ctx.res, 200, { status: "ok" });
  });
}

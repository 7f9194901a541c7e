import type { IncomingMessage, ServerResponse } from "node:http";
import { systemClock, type Clock } from "../common/clock.js";
import type { CoordinatorConfig } from "../common/config.js";
import { HttpServer, pathnameOf } from "../common/http-server.js";
import { createGuard, logClusterPlane } from "../common/access-guard.js";
import { coordinatorRouteClass } from "./routes/route-class.js";
import type { Logger } from "../common/logger.js";
import { registerMetricsRoute } from "../common/metrics-route.js";
import { mathRng, type Rng } from "../common/rng.js";
import { startTracing } from "../common/tracing.js";
import { CoordinatorTelemetry } from "./telemetry/coordinator-telemetry.js";
import { registerDashboardRoutes } from "./routes/dashboard-routes.js";
import { registerHealthRoutes } from "./routes/health-routes.js";
import { InferencePipeline } from "./pipeline/inference-pipeline.js";
import { registerAdminRoutes } from "./routes/admin-routes.js";
import { ClientCaps } from "./admission/client-caps.js";
import { HeartbeatAdmission } from "./fleet/heartbeat-admission.js";
import { RateLimiter } from "./admission/rate-limiter.js";
import { registerOpenAiRoutes } from "./routes/openai-routes.js";
import { systemTimers } from "../common/timers.js";
import { AdmissionQueue } from "./admission/admission-queue.js";
import { PrefixIndex } from "./fleet/prefix-index.js";
import { profileNamed } from "./scheduler/profiles.js";
import { registerSeedRoutes } from "./routes/seed-routes.js";
import { SessionTracker } from "./fleet/session-tracker.js";
import { WorkerClient } from "./fleet/worker-client.js";
import { WorkerTable } from "./fleet/worker-table.js";

/** Wires a coordinator: worker table, session tracker, pipeline, routes, and the expiry sweep. */
/** Connections toward one worker beyond the streams admission allows (cancels and control calls beside them). */
const WORKER_CONNECTION_MARGIN = 64;

export interface RunningCoordinator {
  readonly url: string;
  readonly table: WorkerTable;
  readonly tracker: SessionTracker;
  readonly pipeline: InferencePipeline;
  readonly telemetry: CoordinatorTelemetry;
  /**
   * SIGTERM's first step: readiness turns 503 and new inference requests get 503 draining (a load
   * balancer retries them elsewhere), while the client requests already running finish, for at most
   * `timeoutMs`. Resolves with the requests still open when it gave up (0: all finished).
   */
  drain(timeoutMs: number): Promise<number>;
  close(): Promise<void>;
}

export async function startCoordinator(config: CoordinatorConfig, deps: { log: Logger; clock?: Clock; rng?: Rng }): Promise<RunningCoordinator> {
  const { log } = deps;
  const clock = deps.clock ?? systemClock;
  const table = new WorkerTable(clock, config.heartbeatIntervalMs);
  const index = new PrefixIndex(config.prefixIndexMaxBlocks);
  table.onChange((id, event) => {
    if (event !== "left") return;
    log.warn({ worker_id: id }, "worker.expired");
    index.removeWorker(id);
  });
  const tracker = new SessionTracker();
  const queue = new AdmissionQueue({ maxSize: config.queueSize, timeoutMs: config.queueTimeoutMs, clock, timers: systemTimers });
  tracker.onFreed = () => queue.kick();
  const client = new WorkerClient({
    connectTimeoutMs: config.workerConnectTimeoutMs,
    prefillTimeoutMs: config.prefillTimeoutMs,
    // A stream holds one connection for its life and admission keeps at most SYSTEM_MAX_SESSIONS
    // streams open, all of which may be on one worker; the margin is for the calls beside them
    // (cancels, a prefill whose decode is starting, drain and adopt).
    maxConnectionsPerWorker: config.systemMaxSessions + WORKER_CONNECTION_MARGIN,
    ...(config.clusterToken !== undefined ? { headers: { authorization: `Bearer ${config.clusterToken}` } } : {}),
  });
  const rateLimiter = new RateLimiter({ requestsPerMinute: config.rateLimitRpm, tokensPerMinute: config.rateLimitTpm });
  const profile = profileNamed(config.schedulerProfile, config.schedulerSaturation);
  const tracing = startTracing(config, "coordinator", log);
  const telemetry = new CoordinatorTelemetry({ table, tracker, clock, tracer: tracing.tracer, queueLength: () => queue.size });
  const caps = new ClientCaps({ maxStreams: config.maxStreamsPerKey, maxQueued: config.maxQueuedPerKey });
  const pipeline = new InferencePipeline({
    config, table, tracker, client, profile, clock, rng: deps.rng ?? mathRng, log, rateLimiter, telemetry, index, queue, caps,
  });
  const server = new HttpServer({
    log,
    maxBodyBytes: config.maxBodyBytes,
    maxJsonDepth: config.maxJsonDepth,
    guard: createGuard(
      { apiKeys: config.apiKeys, adminApiKeys: config.adminApiKeys, clusterToken: config.clusterToken, insecure: config.insecure },
      coordinatorRouteClass,
    ),
    onResponse: (route, method, status) => telemetry.metrics.httpResponse(route, method, status),
  });
  const startedMs = clock.now();
  const admission = new HeartbeatAdmission({
    maxWorkers: config.maxWorkers, maxIntervalMs: config.maxHeartbeatIntervalMs, allowlist: config.workerAllowlist,
  });
  registerHealthRoutes(server, { table, tracker, config, clock, startedMs, index, queue, pipeline, admission });
  const preflight = { rateLimiter, caps, clock, refusalBeforeBody: (requestId: string) => pipeline.refusalBeforeBody(requestId) };
  registerSeedRoutes(server, pipeline, config, preflight);
  registerOpenAiRoutes(server, { pipeline, config, table, clock, preflight });
  registerAdminRoutes(server, { table, client, pipeline });
  registerMetricsRoute(server, telemetry.metrics.registry);
  registerDashboardRoutes(server, { table, tracker, telemetry, config, clock, startedMs });
  // Expiry is checked often enough to notice a silent worker within a fraction of its interval.
  const sweeper = setInterval(() => table.sweep(), Math.max(25, Math.min(1000, config.heartbeatIntervalMs / 4)));
  sweeper.unref();
  // Client requests open now (inference, models, dashboard data): what a drain waits for.
  let openRequests = 0;
  let onRequestDone: (() => void) | undefined;
  server.server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    if (coordinatorRouteClass(pathnameOf(req.url ?? "/")) !== "client") return;
    // While draining, no connection is kept for a next request: it should go to another coordinator.
    if (pipeline.draining) res.shouldKeepAlive = false;
    openRequests++;
    res.once("close", () => {
      openRequests--;
      onRequestDone?.();
    });
  });
  const url = await server.listen(config.port, config.host);
  log.info({ url, port: server.port, profile: profile.name, queue_size: config.queueSize }, "server.listening");
  logClusterPlane(log, config, "coordinator");
  return {
    url,
    table,
    tracker,
    pipeline,
    telemetry,
    async drain(timeoutMs) {
      pipeline.draining = true;
      queue.kick();
      log.info({ open_requests: openRequests, timeout_ms: timeoutMs }, "coordinator.draining");
      const started = clock.now();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        const check = () => {
          if (openRequests > 0) return;
          clearTimeout(timer);
          resolve();
        };
        onRequestDone = check;
        check();
      });
      onRequestDone = undefined;
      log.info({ open_requests: openRequests, waited_ms: Math.round(clock.now() - started) }, "coordinator.drained");
      return openRequests;
    },
    async close() {
      clearInterval(sweeper);
      server.server.closeAllConnections();
      await server.close();
      await client.close();
      await tracing.shutdown();
    },
  };
}

import { availableParallelism } from "node:os";
import { stat } from "node:fs/promises";
import { systemClock, type Clock } from "../common/clock.js";
import type { WorkerConfig } from "../common/config.js";
import { HttpServer, type HttpServerOptions } from "../common/http-server.js";
import { createGuard } from "../common/access-guard.js";
import type { Logger } from "../common/logger.js";
import { registerMetricsRoute } from "../common/metrics-route.js";
import { startTracing } from "../common/tracing.js";
import type { Engine } from "../engine/engine.js";
import { chooseEngine, chooseParallel, chooseThreads } from "../engine/engine-tuning.js";
import { createLlamaEngine } from "../engine/llama-engine.js";
import { loadNativeBinding } from "../engine/native-binding.js";
import { createNativeEngine } from "../engine/native-engine.js";
import { modelIdFromPath, resolveModel } from "../engine/model-source.js";
import { HeartbeatSender } from "./heartbeat-sender.js";
import { WorkerService } from "./worker-service.js";

/** Wires a worker together: model, engine, HTTP routes, heartbeats and the idle-session sweep. */
export interface RunningWorker {
  readonly url: string;
  readonly workerId: string;
  readonly service: WorkerService;
  /** Refuses new sessions, lets running ones finish (bounded), then stops everything. */
  shutdown(): Promise<void>;
}

export interface StartWorkerDeps {
  log: Logger;
  /** Worker processes sharing this machine (their threads must fit its cores together). */
  localWorkers: number;
  modelsDir: string;
  clock?: Clock;
}

export async function startWorker(config: WorkerConfig, deps: StartWorkerDeps): Promise<RunningWorker> {
  const { log } = deps;
  const clock = deps.clock ?? systemClock;
  const { engine, modelCreatedS } = await createEngine(config, deps);
  let service: WorkerService | undefined;
  // With a cluster token, every worker endpoint (health and metrics included) answers only the cluster.
  const serverOptions: HttpServerOptions = {
    log,
    maxBodyBytes: config.maxBodyBytes,
    guard: createGuard({ apiKeys: [], clusterToken: config.clusterToken }, () => "cluster"),
    onResponse: (route, method, status) => service?.metrics.httpResponse(route, method, status),
  };
  const server = new HttpServer(serverOptions);
  // The default id names the port, known once listening; routes are added right after, before any
  // heartbeat tells a coordinator where this worker is.
  const listened = await server.listen(config.workerPort, config.host);
  const port = server.port;
  const workerId = config.workerId ?? `worker-${port}`;
  // Every line this worker logs from here on carries its id, request lines included.
  const wlog = log.child({ worker_id: workerId });
  serverOptions.log = wlog;
  const tracing = startTracing(config, "worker", wlog, { "service.instance.id": workerId });
  service = new WorkerService({
    workerId,
    engine,
    limits: {
      maxSessions: config.workerMaxSessions,
      maxSessionKvBytes: config.workerMaxSessionKvBytes,
      maxKvBytes: config.workerMaxKvBytes,
      ttlMs: config.sessionTtlMs,
    },
    channelTokens: config.channelTokens,
    modelAliases: config.modelAliases.filter((a) => a !== engine.info.modelId),
    modelCreatedS,
    clock,
    log: wlog,
    tracer: tracing.tracer,
    vllmMetrics: config.vllmMetrics,
  });
  const svc = service;
  server
    .route("POST", "/worker/prefill", (ctx) => svc.prefill(ctx))
    .route("POST", "/worker/decode", (ctx) => svc.decode(ctx))
    .route("POST", "/worker/cancel", (ctx) => svc.cancelRoute(ctx))
    .route("GET", "/worker/health", (ctx) => {
      const body = JSON.stringify(svc.health());
      ctx.res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
  registerMetricsRoute(server, svc.metrics.registry);
  const url = config.workerUrl ?? `http://127.0.0.1:${port}`;
  const heartbeat = new HeartbeatSender(
    config.coordinatorUrls,
    config.heartbeatIntervalMs,
    () => ({ worker_id: workerId, worker_url: url, timestamp: clock.wallNow(), interval_ms: config.heartbeatIntervalMs, health: svc.health() }),
    wlog,
    config.clusterToken !== undefined ? { authorization: `Bearer ${config.clusterToken}` } : {},
  );
  heartbeat.start();
  const sweeper = setInterval(() => svc.sweep(), Math.min(10_000, Math.max(50, config.sessionTtlMs / 4)));
  sweeper.unref();
  wlog.info({ url, listen: listened, ...engine.info }, "server.listening");

  let shuttingDown: Promise<void> | undefined;
  return {
    url,
    workerId,
    service: svc,
    shutdown() {
      shuttingDown ??= (async () => {
        const drain = svc.drain(config.drainTimeoutMs);
        heartbeat.beat(); // announce draining at once, so coordinators stop routing here
        await drain;
        heartbeat.stop();
        clearInterval(sweeper);
        server.server.closeAllConnections();
        await server.close();
        await engine.close();
        await tracing.shutdown();
        wlog.info({}, "worker.stopped");
      })();
      return shuttingDown;
    },
  };
}

async function createEngine(config: WorkerConfig, deps: StartWorkerDeps): Promise<{ engine: Engine; modelCreatedS: number }> {
  const model = await resolveModel(config.modelPath, deps.modelsDir, {
    hfEndpoint: config.hfEndpoint, hfToken: config.hfToken, log: deps.log,
  });
  if (model.demo) {
    deps.log.warn(
      { model_path: model.path },
      "model.demo: serving the built-in demo model (random weights): its output is meaningless. " +
        "Serve a real model with --model PATH.gguf, MODEL_PATH, or a .gguf file in ./models",
    );
  }
  const file = await stat(model.path);
  const modelBytes = file.size;
  const threads = chooseThreads({
    requested: config.threads, cores: availableParallelism(), localWorkers: deps.localWorkers, modelBytes, force: config.forceThreads,
  });
  const native = config.engine === "auto" || config.engine === "native" ? loadNativeBinding() : undefined;
  const choice = chooseEngine({ requested: config.engine, gpu: config.gpu, nativeUnavailable: native?.ok === false ? native.reason : undefined });
  deps.log.info({ engine: choice.engine, reason: choice.reason, threads }, "engine.choice");
  const common = {
    modelPath: model.path,
    modelId: config.modelId ?? modelIdFromPath(model.path),
    threads,
    parallel: chooseParallel(config.parallel),
    contextSize: config.contextSize,
    batchSize: config.batchSize,
    log: deps.log,
  };
  const engine = choice.engine === "native"
    ? await createNativeEngine({ ...common, threadsBatch: threads, poll: 0 })
    : await createLlamaEngine({ ...common, gpu: config.gpu });
  return { engine, modelCreatedS: Math.floor(file.mtimeMs / 1000) };
}

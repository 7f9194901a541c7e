import { availableParallelism } from "node:os";
import { stat } from "node:fs/promises";
import { systemClock, type Clock } from "../common/clock.js";
import type { WorkerConfig } from "../common/config.js";
import { HttpServer, sendJson } from "../common/http-server.js";
import { createGuard } from "../common/access-guard.js";
import type { Logger } from "../common/logger.js";
import type { Engine } from "../engine/engine.js";
import { chooseParallel, chooseThreads } from "../engine/engine-tuning.js";
import { createLlamaEngine } from "../engine/llama-engine.js";
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
  // With a cluster token, every worker endpoint (health included) answers only the cluster.
  const server = new HttpServer({
    log,
    maxBodyBytes: config.maxBodyBytes,
    guard: createGuard({ apiKeys: [], clusterToken: config.clusterToken }, () => "cluster"),
  });
  let workerId = config.workerId ?? "";
  const service = new WorkerService({
    get workerId() {
      return workerId;
    },
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
    log,
  });
  server
    .route("POST", "/worker/prefill", (ctx) => service.prefill(ctx))
    .route("POST", "/worker/decode", (ctx) => service.decode(ctx))
    .route("POST", "/worker/cancel", (ctx) => service.cancelRoute(ctx))
    .route("GET", "/worker/cache", (ctx) => sendJson(ctx.res, 200, service.cacheListing()))
    .route("GET", "/worker/health", (ctx) => {
      const body = JSON.stringify(service.health());
      ctx.res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
  const listened = await server.listen(config.workerPort, config.host);
  const port = server.port;
  if (workerId === "") workerId = `worker-${port}`;
  const url = config.workerUrl ?? `http://127.0.0.1:${port}`;
  const heartbeat = new HeartbeatSender(
    config.coordinatorUrls,
    config.heartbeatIntervalMs,
    (ack) => ({
      worker_id: workerId, worker_url: url, timestamp: clock.wallNow(), interval_ms: config.heartbeatIntervalMs, health: service.health(),
      cache: service.sessions.cacheLog.sectionFor(ack),
    }),
    log,
    config.clusterToken !== undefined ? { authorization: `Bearer ${config.clusterToken}` } : {},
  );
  service.sessions.cacheLog.onEvent = () => heartbeat.soon();
  heartbeat.start();
  const sweeper = setInterval(() => service.sweep(), Math.min(10_000, Math.max(50, config.sessionTtlMs / 4)));
  sweeper.unref();
  log.info({ url, listen: listened, worker_id: workerId, ...engine.info }, "server.listening");

  let shuttingDown: Promise<void> | undefined;
  return {
    url,
    workerId,
    service,
    shutdown() {
      shuttingDown ??= (async () => {
        const drain = service.drain(config.drainTimeoutMs);
        heartbeat.beat(); // announce draining at once, so coordinators stop routing here
        await drain;
        heartbeat.stop();
        clearInterval(sweeper);
        server.server.closeAllConnections();
        await server.close();
        await engine.close();
        log.info({ worker_id: workerId }, "worker.stopped");
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
  const engine = await createLlamaEngine({
    modelPath: model.path,
    modelId: config.modelId ?? modelIdFromPath(model.path),
    threads,
    parallel: chooseParallel(config.parallel),
    contextSize: config.contextSize,
    batchSize: config.batchSize,
    gpu: config.gpu,
    log: deps.log,
  });
  return { engine, modelCreatedS: Math.floor(file.mtimeMs / 1000) };
}

import { availableParallelism } from "node:os";
import { stat } from "node:fs/promises";
import { systemClock, type Clock } from "../common/clock.js";
import { checkWorkerConfig, type WorkerConfig } from "../common/config.js";
import { HttpServer, sendJson, type HttpServerOptions } from "../common/http-server.js";
import { createGuard, logClusterPlane } from "../common/access-guard.js";
import { ConfigError } from "../common/config-parse.js";
import { MAX_MODEL_ALIASES } from "../protocol/heartbeat.js";
import type { Logger } from "../common/logger.js";
import { registerMetricsRoute } from "../common/metrics-route.js";
import { startTracing } from "../common/tracing.js";
import type { Engine } from "../engine/engine.js";
import { chooseEngine, chooseParallel, chooseThreads } from "../engine/engine-tuning.js";
import { createLlamaEngine } from "../engine/llama-engine.js";
import { loadNativeBinding } from "../engine/native-binding.js";
import { createNativeEngine } from "../engine/native-engine.js";
import { modelIdFromPath, resolveModel } from "../engine/model-source.js";
import { createSimEngine } from "../engine/sim-engine.js";
import { timerSleeper } from "../engine/sim-sleeper.js";
import { HeartbeatSender } from "./heartbeat-sender.js";
import { requestHandoff } from "./handoff-request.js";

/** Longest a stopping worker waits for its coordinator to hand its cache off (ms). */
const HANDOFF_TIMEOUT_MS = 10_000;
import { WorkerService } from "./worker-service.js";
import { calibrateKvCosts } from "./kv-calibration.js";
import { KvCostModel } from "./kv-restore-rule.js";
import { KvTiers } from "./kv-tiers.js";

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
  // Coordinators refuse a heartbeat with more names (heartbeat.ts): fail here, before loading a model.
  if (config.modelAliases.length > MAX_MODEL_ALIASES) {
    throw new ConfigError(`invalid value for MODEL_ALIASES: ${config.modelAliases.length} names (expected at most ${MAX_MODEL_ALIASES})`);
  }
  const { engine, modelCreatedS } = await createEngine(config, deps);
  let service: WorkerService | undefined;
  // With a cluster token, every worker endpoint (health and metrics included) answers only the cluster.
  const serverOptions: HttpServerOptions = {
    log,
    maxBodyBytes: config.maxBodyBytes,
    maxJsonDepth: config.maxJsonDepth,
    // Without a cluster token: loopback peers only (a coordinator elsewhere needs CLUSTER_TOKEN).
    guard: createGuard({ apiKeys: [], adminApiKeys: [], clusterToken: config.clusterToken, insecure: config.insecure }, () => "cluster"),
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
      claimTimeoutMs: config.decodeClaimTimeoutMs,
    },
    channelTokens: config.channelTokens,
    modelAliases: config.modelAliases.filter((a) => a !== engine.info.modelId),
    modelCreatedS,
    clock,
    log: wlog,
    tracer: tracing.tracer,
    vllmMetrics: config.vllmMetrics,
    transferMaxBytes: config.maxBodyBytes,
  });
  const svc = service;
  await attachKvTiers(svc, engine, config, clock, wlog);
  server
    .route("POST", "/worker/prefill", (ctx) => svc.prefill(ctx))
    .route("POST", "/worker/decode", (ctx) => svc.decode(ctx))
    .route("POST", "/worker/generate", (ctx) => svc.generate(ctx))
    .route("POST", "/worker/cancel", (ctx) => svc.cancelRoute(ctx))
    .route("GET", "/worker/cache", (ctx) => sendJson(ctx.res, 200, svc.cacheListing()))
    .route("POST", "/worker/drain", (ctx) => svc.drainRoute(ctx))
    .route("POST", "/worker/adopt", (ctx) => svc.adoptRoute(ctx))
    .route("POST", "/worker/export", (ctx) => svc.exportRoute(ctx))
    .route("POST", "/worker/undrain", (ctx) => svc.undrainRoute(ctx))
    .route("GET", "/worker/health", (ctx) => {
      const body = JSON.stringify(svc.health());
      ctx.res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
  registerMetricsRoute(server, svc.metrics.registry);
  const url = config.workerUrl ?? `http://127.0.0.1:${port}`;
  const clusterHeaders: Record<string, string> = config.clusterToken !== undefined ? { authorization: `Bearer ${config.clusterToken}` } : {};
  const heartbeat = new HeartbeatSender(
    config.coordinatorUrls,
    config.heartbeatIntervalMs,
    (ack) => ({
      worker_id: workerId, worker_url: url, timestamp: clock.wallNow(), interval_ms: config.heartbeatIntervalMs, health: svc.health(),
      cache: svc.sessions.cacheLog.sectionFor(ack),
    }),
    wlog,
    clusterHeaders,
  );
  svc.sessions.cacheLog.onEvent = () => heartbeat.soon();
  svc.onDrainRequested = () => heartbeat.beat();
  // 0: streams end without waiting (coordinators that did not relay a turn learn of it a beat later).
  if (config.cacheAnnounceWaitMs > 0) svc.announceCache = (n) => heartbeat.announced(n.epoch, n.event.seq, config.cacheAnnounceWaitMs);
  heartbeat.start();
  // Sessions are freed at most a quarter of their timeout late.
  const sweepMs = Math.min(10_000, Math.max(50, Math.min(config.sessionTtlMs, config.decodeClaimTimeoutMs) / 4));
  const sweeper = setInterval(() => svc.sweep(), sweepMs);
  sweeper.unref();
  wlog.info({ url, listen: listened, ...engine.info }, "server.listening");
  logClusterPlane(wlog, config, "worker");

  let shuttingDown: Promise<void> | undefined;
  return {
    url,
    workerId,
    service: svc,
    shutdown() {
      shuttingDown ??= (async () => {
        // Hand the cached conversations to other workers first (the coordinator calls back
        // /worker/drain and /worker/adopt on the others), then wait for running decodes.
        await requestHandoff(heartbeat.coordinatorUrls(), workerId, clusterHeaders, Math.min(config.drainTimeoutMs, HANDOFF_TIMEOUT_MS), wlog);
        const drain = svc.drain(config.drainTimeoutMs);
        heartbeat.beat(); // announce draining at once, so coordinators stop routing here
        await drain;
        // Conversations saved to the disk tier at drain must land before the process ends.
        await svc.sessions.savesSettled();
        await svc.sessions.tiers?.store.flushed();
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
  // A simulated model is "created" when its worker starts.
  checkWorkerConfig(config);
  if (config.engine === "sim") return { engine: createSimWorkerEngine(config, deps), modelCreatedS: Math.floor((deps.clock ?? systemClock).wallNow() / 1000) };
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
    ? await createNativeEngine({ ...common, threadsBatch: threads, poll: 0, cpuBackend: config.cpuBackend, modelBytes })
    : await createLlamaEngine({ ...common, gpu: config.gpu });
  return { engine, modelCreatedS: Math.floor(file.mtimeMs / 1000) };
}

/** The simulated engine, no model: faults that take the process down act on this very process. */
function createSimWorkerEngine(config: WorkerConfig, deps: StartWorkerDeps): Engine {
  return createSimEngine({
    modelId: config.modelId ?? "sim",
    contextSize: config.contextSize === "auto" ? 4096 : config.contextSize,
    parallel: chooseParallel(config.parallel),
    kvBytesPerToken: config.simKvBytesPerToken,
    tokenChars: config.simTokenChars,
    timing: {
      prefillBaseMs: config.simPrefillBaseMs, prefillPerTokenMs: config.simPrefillPerTokenMs,
      itlMs: config.simItlMs, itlPerSequenceMs: config.simItlPerSequenceMs, jitter: config.simJitter, slowFactor: config.simSlowFactor,
    },
    faults: {
      failPrefillProbability: config.simFailPrefill, crashAfterTokens: config.simCrashAfterTokens, hang: config.simHang,
      stallAfterTokens: config.simStallAfterTokens, stallMs: config.simStallMs, stallProbability: config.simStallProbability,
      crashOnPrompt: config.simCrashOnPrompt, crashOnPromptAfterTokens: config.simCrashOnPromptAfterTokens,
    },
    seed: config.simSeed,
    clock: deps.clock ?? systemClock,
    sleeper: timerSleeper,
    hooks: {
      crash: () => {
        deps.log.fatal({ crash_after_tokens: config.simCrashAfterTokens, crash_on_prompt: config.simCrashOnPrompt !== undefined }, "sim.crash");
        process.kill(process.pid, "SIGKILL");
      },
      freeze: () => {
        deps.log.fatal({}, "sim.freeze");
        process.kill(process.pid, "SIGSTOP");
      },
    },
  });
}

/**
 * KV tiers on when KV_HOST_BYTES or KV_DISK_DIR is set and the engine can save a sequence (the
 * native engine; node-llama-cpp exposes no per-sequence state, so tiers stay off there, logged).
 */
async function attachKvTiers(svc: WorkerService, engine: Engine, config: WorkerConfig, clock: Clock, log: Logger): Promise<void> {
  if (config.kvHostBytes <= 0 && config.kvDiskDir === undefined) return;
  const identity = engine.info.kvStateIdentity;
  if (identity === undefined) {
    log.warn({ engine: engine.info.engine }, "kv_tier.unsupported_engine");
    return;
  }
  const calibration = await calibrateKvCosts(engine, clock, config.kvDiskDir);
  if (calibration === undefined) {
    log.warn({}, "kv_tier.calibration_failed");
    return;
  }
  const store = new KvTiers({ identity, hostBytes: config.kvHostBytes, diskDir: config.kvDiskDir, diskBytes: config.kvDiskBytes, log });
  svc.attachTiers(store, new KvCostModel(calibration));
  log.info({
    host_bytes: config.kvHostBytes, disk_dir: config.kvDiskDir ?? null, disk_bytes: config.kvDiskBytes,
    prefill_ms_per_token: calibration.prefillMsPerToken, restore_host_ms_per_token: calibration.restoreMsPerToken.host,
    restore_disk_ms_per_token: calibration.restoreMsPerToken.disk, calibration_tokens: calibration.tokens, state_bytes: calibration.stateBytes,
  }, "kv_tier.ready");
}

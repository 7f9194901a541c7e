import { spawn, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { workerOptions, type ServeConfig } from "../common/config.js";
import { createLogger } from "../common/logger.js";
import { stopChild } from "../common/process-harness.js";
import { startCoordinator } from "../coordinator/start-coordinator.js";
import { chooseThreads } from "../engine/engine-tuning.js";
import { modelIdFromPath, resolveModel } from "../engine/model-source.js";
import { RestartBackoff } from "./restart-backoff.js";

/**
 * `inference-engine serve`: the coordinator in this process and N worker processes beside it. The
 * model is resolved once here (so the demo model is written once), the cores are shared out among
 * the workers (never more threads in total than cores), and every worker is stopped with us.
 */
const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

export async function runServe(config: ServeConfig): Promise<number> {
  const log = createLogger("serve", config.logLevel);
  // A remote source (hf:…, a URL) is pulled here once, and the workers load the local file.
  const model = await resolveModel(config.modelPath, config.modelsDir, { hfEndpoint: config.hfEndpoint, hfToken: config.hfToken, log });
  const threads = chooseThreads({
    requested: config.threads, cores: availableParallelism(), localWorkers: config.workers,
    modelBytes: (await stat(model.path)).size, force: config.forceThreads,
  });
  const coordinator = await startCoordinator(config, { log: createLogger("coordinator", config.logLevel) });
  const port = new URL(coordinator.url).port;
  const coordinatorUrl = `http://127.0.0.1:${port}`;

  const baseEnv = workerEnv(config);
  const children: (ChildProcess | undefined)[] = [];
  let stopping = false;
  const backoffs = Array.from({ length: config.workers }, () => new RestartBackoff());
  const spawnWorker = (i: number, restarts: number) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...baseEnv,
      HOST: "127.0.0.1",
      WORKER_PORT: String(config.workerPort === 0 ? 0 : config.workerPort + i),
      WORKER_ID: `worker-${i + 1}`,
      COORDINATOR_URL: coordinatorUrl,
      MODEL_PATH: model.path,
      THREADS: String(threads),
      LOCAL_WORKERS: String(config.workers),
      // One libuv thread: node-llama-cpp's per-token path is faster without pool contention.
      UV_THREADPOOL_SIZE: "1",
    };
    delete env.WORKER_URL;
    const child = spawn(process.execPath, [MAIN, "worker"], { env, stdio: ["ignore", "inherit", "inherit"] });
    const startedMs = performance.now();
    children[i] = child;
    child.on("exit", (code, signal) => {
      children[i] = undefined;
      if (stopping) return;
      if (!config.restartWorkers) {
        log.error({ worker: i + 1, code, signal }, "worker.exited");
        return;
      }
      const delay = backoffs[i]!.delayAfterCrash(startedMs, performance.now());
      log.error({ worker: i + 1, code, signal, restarts, restart_in_ms: delay }, "worker.exited");
      setTimeout(() => !stopping && spawnWorker(i, restarts + 1), delay).unref();
    });
  };
  for (let i = 0; i < config.workers; i++) spawnWorker(i, 0);

  log.info(
    {
      url: `http://localhost:${port}`, workers: config.workers, threads_per_worker: threads, model: model.path, demo: model.demo,
      dashboard: `http://localhost:${port}/dashboard`,
      try: `curl -N http://localhost:${port}/coordinator/infer -H 'content-type: application/json' -d '{"prompt":"Once upon a time","model":"any","max_tokens":64}'`,
      try_openai: `curl http://localhost:${port}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"${config.modelId ?? modelIdFromPath(model.path)}","messages":[{"role":"user","content":"Hi"}],"max_tokens":64}'`,
    },
    model.demo
      ? "serve.ready: demo model (random weights, meaningless output); serve a real one with --model PATH.gguf"
      : "serve.ready",
  );

  await new Promise<void>((resolve) => {
    const on = () => {
      process.off("SIGTERM", on);
      process.off("SIGINT", on);
      resolve();
    };
    process.on("SIGTERM", on);
    process.on("SIGINT", on);
  });
  stopping = true;
  await Promise.all(children.map((c) => (c ? stopChild(c, config.drainTimeoutMs + 5000) : undefined)));
  await coordinator.close();
  log.info({}, "serve.stopped");
  return 0;
}

/** The worker options of this serve, as the environment a worker process reads. */
function workerEnv(config: ServeConfig): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, spec] of Object.entries(workerOptions)) {
    const value = (config as unknown as Record<string, unknown>)[key];
    if (spec.env === undefined || value === undefined) continue;
    env[spec.env] = Array.isArray(value) ? value.join(",") : String(value);
  }
  return env;
}

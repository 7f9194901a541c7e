import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";
import { ManagedChild, startChild, type LogLine } from "../../src/common/process-harness.js";

/**
 * Starts the project's real processes (coordinator, workers, serve) on 127.0.0.1 with port 0 through
 * the shared process harness, which reads their JSON log lines, so tests wait on observable state
 * instead of sleeping.
 */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI = resolve(REPO_ROOT, "bin/inference-engine.js");
export const SHARED_MODELS = resolve(REPO_ROOT, "../shared/models");
export const STORIES_MODEL = resolve(SHARED_MODELS, "stories260K.gguf");
export const RANDOM_32K_MODEL = resolve(SHARED_MODELS, "llama-2-tiny-random.gguf");

export type { LogLine };
/** A started process: its log lines, `waitForLog`, `kill`, `stop` (SIGTERM, then SIGKILL). */
export type Proc = ManagedChild;

/** Why a model test is skipped, or undefined when the model is present. */
export function missingModel(path: string): string | undefined {
  return existsSync(path) ? undefined : `model ${path} is absent (../shared/models is provided in CI; skipped)`;
}

export function spawnCli(name: string, args: string[], env: Record<string, string> = {}): Proc {
  return startChild({
    name, command: process.execPath, args: [CLI, ...args], cwd: REPO_ROOT, verbose: process.env.TEST_VERBOSE !== undefined,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "info", ...env },
  });
}

export interface Served {
  proc: Proc;
  url: string;
}

export async function startCoordinatorProc(env: Record<string, string> = {}, args: string[] = []): Promise<Served> {
  const port = env.PORT === undefined ? ["--port", "0"] : [];
  const proc = spawnCli("coordinator", ["coordinator", ...port, "--host", "127.0.0.1", ...args], {
    HEARTBEAT_INTERVAL_MS: "200",
    ...env,
  });
  const line = await proc.waitListening();
  return { proc, url: String(line.url) };
}

export async function startWorkerProc(
  coordinatorUrl: string,
  opts: { model?: string; id?: string; env?: Record<string, string>; args?: string[] } = {},
): Promise<Served> {
  const args = ["worker", "--port", "0", "--host", "127.0.0.1", ...(opts.model ? ["--model", opts.model] : []), ...(opts.args ?? [])];
  const proc = spawnCli(opts.id ?? "worker", args, {
    COORDINATOR_URL: coordinatorUrl,
    HEARTBEAT_INTERVAL_MS: "200",
    THREADS: "1",
    PARALLEL: "4",
    MODELS_DIR: resolve(REPO_ROOT, "models"),
    ...(opts.id ? { WORKER_ID: opts.id } : {}),
    ...opts.env,
  });
  const line = await proc.waitListening();
  return { proc, url: String(line.url) };
}

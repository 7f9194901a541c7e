import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, resolve } from "node:path";

/**
 * Starts the project's real processes (coordinator, workers, serve) on 127.0.0.1 with port 0 and
 * reads their JSON log lines, so tests wait on observable state instead of sleeping.
 */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const CLI = resolve(REPO_ROOT, "bin/inference-engine.js");
export const SHARED_MODELS = resolve(REPO_ROOT, "../shared/models");
export const STORIES_MODEL = resolve(SHARED_MODELS, "stories260K.gguf");
export const RANDOM_32K_MODEL = resolve(SHARED_MODELS, "llama-2-tiny-random.gguf");

/** Why a model test is skipped, or undefined when the model is present. */
export function missingModel(path: string): string | undefined {
  return existsSync(path) ? undefined : `model ${path} is absent (../shared/models is provided in CI; skipped)`;
}

export interface LogLine {
  msg?: string;
  level?: string;
  [k: string]: unknown;
}

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of running) if (c.exitCode === null) c.kill("SIGKILL");
});

export class Proc {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private watchers: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  private partial = "";

  constructor(readonly child: ChildProcess, readonly name: string) {
    running.add(child);
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => this.onStdout(chunk));
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      this.stderr.push(chunk);
      if (process.env.TEST_VERBOSE) process.stderr.write(`[${name}] ${chunk}`);
    });
    this.exited = new Promise((res) =>
      child.on("exit", (code, signal) => {
        running.delete(child);
        res({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private onStdout(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) {
      if (process.env.TEST_VERBOSE) process.stderr.write(`[${this.name}] ${line}\n`);
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        continue;
      }
      this.logs.push(parsed);
      for (const w of [...this.watchers]) {
        if (w.pred(parsed)) {
          this.watchers.splice(this.watchers.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  }

  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 30_000, what = "log line"): Promise<LogLine> {
    const seen = this.logs.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.watchers = this.watchers.filter((w) => w.resolve !== done);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; stderr: ${this.stderr.join("").slice(-2000)}`));
      }, timeoutMs);
      const done = (l: LogLine) => {
        clearTimeout(timer);
        resolve(l);
      };
      this.watchers.push({ pred, resolve: done });
      void this.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code ?? signal}) before ${what}; stderr: ${this.stderr.join("").slice(-2000)}`));
      });
    });
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.alive) this.child.kill(signal);
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.kill("SIGTERM");
    const t = setTimeout(() => this.kill("SIGKILL"), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }
}

export function spawnCli(name: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Proc(child, name);
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
  const line = await proc.waitForLog((l) => l.msg === "server.listening", 60_000, "server.listening");
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
  const line = await proc.waitForLog((l) => l.msg === "server.listening", 60_000, "server.listening");
  return { proc, url: String(line.url) };
}

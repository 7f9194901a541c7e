import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "../../common/free-port.js";

/**
 * Processes of the performance suite: coordinators and workers started from the project's CLI on
 * 127.0.0.1, ready once their health endpoint answers. Only processes started here are ever
 * stopped, by their pid.
 */
const CLI = fileURLToPath(new URL("../../../../bin/inference-engine.js", import.meta.url));

/** Every process this suite started; killed if the suite itself ends early (Ctrl-C, a crash). */
const started = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));

/** Registers a child for the clean-up above. */
export function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once("exit", () => started.delete(child));
  return child;
}

export interface Served {
  readonly pid: number;
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

export interface Fleet {
  coordinator: Served;
  workers: Served[];
  stop(): Promise<void>;
}

/**
 * Starts a CLI server at LOG_LEVEL=warn (no per-request log lines: nginx, its peer in these runs,
 * has its access log off) on a port chosen here, ready once `healthPath` answers 200.
 */
export async function startQuiet(args: string[], healthPath: string, env: Record<string, string> = {}, nodeArgs: string[] = [], fixedPort?: number): Promise<Served> {
  // A fixed port: a restarted server where its peers expect the old one.
  const port = fixedPort ?? await freePort();
  const child = track(spawn(process.execPath, [...nodeArgs, CLI, ...args, "--port", String(port), "--host", "127.0.0.1"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env, LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  }));
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr = (stderr + c).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args[0]} exited (${child.exitCode}) before listening: ${stderr}`);
    try {
      if ((await fetch(`${url}${healthPath}`)).status === 200) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${args[0]} did not start within 60 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { pid: child.pid!, url, child, stop: () => stopChild(child) };
}

/** A coordinator and N sim workers registered with it. */
export async function startSimFleet(o: { workers: number; simArgs: string[]; workerEnv?: Record<string, string>; coordinatorEnv?: Record<string, string>; coordinatorNodeArgs?: string[] }): Promise<Fleet> {
  const coordinator = await startQuiet(["coordinator"], "/coordinator/health", { HEARTBEAT_INTERVAL_MS: "250", ...o.coordinatorEnv }, o.coordinatorNodeArgs);
  const workers = await Promise.all(
    Array.from({ length: o.workers }, (_, i) =>
      startQuiet(["worker", "--engine", "sim", "--worker-id", `sim-${i + 1}`, ...o.simArgs], "/worker/health", {
        COORDINATOR_URL: coordinator.url, HEARTBEAT_INTERVAL_MS: "250", ...o.workerEnv,
      }),
    ),
  );
  await waitRoutable(coordinator.url, o.workers);
  return {
    coordinator,
    workers,
    async stop() {
      await Promise.all([...workers.map((w) => w.stop()), coordinator.stop()]);
    },
  };
}

export async function waitRoutable(url: string, n: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/coordinator/health`);
      const body = (await res.json()) as { workers?: { routable?: number } };
      if (body.workers?.routable === n) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${n} workers not routable at ${url} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

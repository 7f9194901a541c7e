import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "../../common/free-port.js";
import { startChild, waitHealthy } from "../../common/process-harness.js";

/**
 * Processes of the performance suite: coordinators and workers started from the project's CLI on
 * 127.0.0.1, ready once their health endpoint answers. Only processes started here are ever
 * stopped, by their pid.
 */
export const CLI = fileURLToPath(new URL("../../../../bin/inference-engine.js", import.meta.url));

// An interrupted suite takes its processes with it (the harness kills its children on exit).
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));

export interface Served {
  readonly pid: number;
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
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
  const c = startChild({
    name: args[0] ?? "server", command: process.execPath, args: [...nodeArgs, CLI, ...args, "--port", String(port), "--host", "127.0.0.1"],
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env, LOG_LEVEL: "warn" },
    keepLogs: false,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(c, `${url}${healthPath}`).catch(async (err: unknown) => {
    await c.stop();
    throw err;
  });
  return { pid: c.pid, url, child: c.child, stop: () => c.stop(5000) };
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

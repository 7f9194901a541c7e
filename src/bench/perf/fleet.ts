import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/**
 * Processes of the performance suite: coordinators and workers started from the project's CLI on
 * 127.0.0.1 with port 0, ready once their `server.listening` log line is seen. Only processes
 * started here are ever stopped, by their pid.
 */
const CLI = fileURLToPath(new URL("../../../../bin/inference-engine.js", import.meta.url));

export interface Served {
  readonly pid: number;
  readonly url: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export function startCli(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr = (stderr + c).slice(-4000)));
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args[0]} did not start within 60 s: ${stderr}`));
    }, 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited (${code}) before listening: ${stderr}`));
    });
    child.stdout!.setEncoding("utf8").on("data", (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf("\n")) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.includes('"server.listening"')) continue;
        clearTimeout(timer);
        child.removeAllListeners("exit");
        child.stdout!.resume();
        const url = String((JSON.parse(line) as { url: string }).url);
        resolve({ pid: child.pid!, url, child, stop: () => stopChild(child) });
      }
    });
  });
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

/** A coordinator (log level info, so `server.listening` is seen) and N sim workers registered with it. */
export async function startSimFleet(o: { workers: number; simArgs: string[]; workerEnv?: Record<string, string>; coordinatorEnv?: Record<string, string>; coordinatorNodeArgs?: string[] }): Promise<Fleet> {
  const coordinator = await startCli(["coordinator", "--port", "0", "--host", "127.0.0.1"], {
    HEARTBEAT_INTERVAL_MS: "250", ...o.coordinatorEnv,
  }, o.coordinatorNodeArgs);
  const workers = await Promise.all(
    Array.from({ length: o.workers }, (_, i) =>
      startCli(["worker", "--engine", "sim", "--port", "0", "--host", "127.0.0.1", "--worker-id", `sim-${i + 1}`, ...o.simArgs], {
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

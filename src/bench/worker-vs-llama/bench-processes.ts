import { freePort } from "../../common/free-port.js";
import { startChild, waitHealthy } from "../../common/process-harness.js";

/**
 * The two servers a benchmark compares, started on 127.0.0.1: our worker (the CLI, as deployed)
 * and llama-server. Each is stopped by its own pid.
 */
export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

// An interrupted benchmark takes its servers with it (the harness kills its children on exit).
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => process.exit(130));

export interface WorkerStart {
  cli: string;
  model: string;
  parallel: number;
  /** Extra environment (THREADS, ENGINE, …). */
  env: Record<string, string>;
  startTimeoutMs: number;
}

export async function startWorker(o: WorkerStart): Promise<Server & { listening: Record<string, unknown> }> {
  const c = startChild({
    name: "worker", command: process.execPath, args: [o.cli, "worker", "--port", "0", "--host", "127.0.0.1", "--model", o.model],
    env: {
      PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp",
      // No coordinator: heartbeats go to a closed port, rarely.
      COORDINATOR_URL: "http://127.0.0.1:9", HEARTBEAT_INTERVAL_MS: "3600000",
      PARALLEL: String(o.parallel), LOG_LEVEL: "info", ...o.env,
    },
    keepLogs: false,
  });
  const listening = await c.waitListening(o.startTimeoutMs).catch(async (err: unknown) => {
    await c.stop();
    throw err;
  });
  return { url: String(listening.url), pid: c.pid, listening, stop: () => c.stop() };
}

export interface LlamaServerStart {
  binary: string;
  model: string;
  threads: number;
  parallel: number;
  ctxPerSeq: number;
  startTimeoutMs: number;
}

export async function startLlamaServer(o: LlamaServerStart): Promise<Server> {
  const port = await freePort();
  const args = [
    "-m", o.model, "--host", "127.0.0.1", "--port", String(port),
    "-t", String(o.threads), "-tb", String(o.threads), "-c", String(o.ctxPerSeq * o.parallel), "-np", String(o.parallel),
    "-cb", "-b", "512", "--no-warmup", "--log-disable",
  ];
  const c = startChild({ name: "llama-server", command: o.binary, args });
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(c, `${url}/health`, o.startTimeoutMs).catch(async (err: unknown) => {
    await c.stop();
    throw err;
  });
  return { url, pid: c.pid, stop: () => c.stop() };
}

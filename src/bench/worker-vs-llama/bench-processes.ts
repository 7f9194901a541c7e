import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { request } from "undici";
import { freePort } from "../../common/free-port.js";

/**
 * The two servers a benchmark compares, started on 127.0.0.1: our worker (the CLI, as deployed)
 * and llama-server. Each is stopped by its own pid.
 */
export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
const killAll = () => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
};
process.on("exit", killAll);
// An interrupted benchmark takes its servers with it.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

export interface WorkerStart {
  cli: string;
  model: string;
  parallel: number;
  /** Extra environment (THREADS, ENGINE, …). */
  env: Record<string, string>;
  startTimeoutMs: number;
}

export async function startWorker(o: WorkerStart): Promise<Server & { listening: Record<string, unknown> }> {
  const child = spawn(process.execPath, [o.cli, "worker", "--port", "0", "--host", "127.0.0.1", "--model", o.model], {
    env: {
      PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp",
      // No coordinator: heartbeats go to a closed port, rarely.
      COORDINATOR_URL: "http://127.0.0.1:9", HEARTBEAT_INTERVAL_MS: "3600000",
      PARALLEL: String(o.parallel), LOG_LEVEL: "info", ...o.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = "";
    let stderr = "";
    const timer = setTimeout(() => reject(new Error(`worker did not start within ${o.startTimeoutMs} ms: ${stderr.slice(-2000)}`)), o.startTimeoutMs);
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl !== -1; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (parsed.msg === "server.listening") {
            clearTimeout(timer);
            resolve(parsed);
          }
        } catch {
          // not a log line
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code}) before listening: ${stderr.slice(-2000)}`));
    });
  });
  child.stdout!.resume();
  return { url: String(listening.url), pid: child.pid!, listening, stop: () => stopChild(child) };
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
  const child = spawn(o.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + o.startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`llama-server exited (${child.exitCode}): ${stderr}`);
    try {
      const res = await request(`${url}/health`);
      await res.body.text();
      if (res.statusCode === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`llama-server did not become healthy within ${o.startTimeoutMs} ms: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, pid: child.pid!, stop: () => stopChild(child) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
  running.delete(child);
}


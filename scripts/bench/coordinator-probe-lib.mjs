// Shared pieces of the coordinator's cost probes (request-cost, heartbeat-cost, refusal-under-relay):
// start a coordinator from a given checkout's build (to compare two builds alternately in one run),
// sim workers registered with it, and read a process's CPU time from /proc. Everything listens on
// 127.0.0.1; every process started here is stopped here, by its pid.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";

export function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

/** User + system CPU time of a process (ms; /proc ticks are 10 ms). */
export function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const x = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(x[11]) + Number(x[12])) * 10;
}

export function loadavg() {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

export async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
    s.on("error", rej);
  });
}

/** Starts `<root>/bin/inference-engine.js <args>`; resolves once `healthPath` answers 200. */
export async function startServer(root, args, env, healthPath, nodeArgs = []) {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, resolve(root, "bin/inference-engine.js"), ...args, "--port", String(port), "--host", "127.0.0.1"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(url + healthPath)).status === 200) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`${args[0]} from ${root} did not start`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url, pid: child.pid, child,
    stop: () => new Promise((r) => {
      if (child.exitCode !== null) return r();
      child.once("exit", () => r());
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 3000).unref();
    }),
  };
}

/** A coordinator from `coordRoot` and `n` sim workers (from `workerRoot`), all routable. */
export async function startFleet({ coordRoot, workerRoot, n, simArgs, workerEnv = {}, coordEnv = {}, coordNodeArgs = [] }) {
  const coordinator = await startServer(coordRoot, ["coordinator"], { HEARTBEAT_INTERVAL_MS: "250", ...coordEnv }, "/coordinator/health", coordNodeArgs);
  const workers = await Promise.all(Array.from({ length: n }, (_, i) =>
    startServer(workerRoot, ["worker", "--engine", "sim", "--worker-id", `sim-${i + 1}`, ...simArgs], {
      COORDINATOR_URL: coordinator.url, HEARTBEAT_INTERVAL_MS: "250", ...workerEnv,
    }, "/worker/health")));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const h = await (await fetch(`${coordinator.url}/coordinator/health`)).json();
    if (h.workers?.routable === n) break;
    if (Date.now() > deadline) throw new Error("workers not routable");
    await new Promise((r) => setTimeout(r, 50));
  }
  return { coordinator, workers, stop: () => Promise.all([coordinator.stop(), ...workers.map((w) => w.stop())]) };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

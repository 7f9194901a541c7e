import { execFileSync, spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { startChild } from "../../src/common/process-harness.js";
import { CLI, REPO_ROOT, type Proc } from "./processes.js";

/**
 * A peer on "another machine": a network namespace joined to this one by a veth pair, in
 * 10.201.0.0/24 (a /30 per test process, chosen from the pid). Requests made from inside it reach
 * this namespace's servers from a non-loopback address. Needs root and iproute2; `open()` returns
 * the reason it cannot run instead, for a clear skip. Names start with `s12`.
 */
export interface PeerNamespace {
  /** This namespace's address on the link (servers listening on 0.0.0.0 answer there). */
  readonly hostIp: string;
  /** The peer's address. */
  readonly peerIp: string;
  /** An HTTP request made from inside the peer namespace. */
  fetch(url: string, init?: { method?: string; headers?: Record<string, string>; body?: unknown }): Promise<{ status: number; body: any }>;
  /**
   * A worker process inside the peer namespace, on the peer's address, port 3001 (the namespace is
   * fresh: nothing else listens there). `ip netns exec` execs node, so the pid is the worker's.
   */
  startWorker(coordinatorUrl: string, id: string, env?: Record<string, string>): Promise<Proc>;
  close(): void;
}

export function openPeerNamespace(): PeerNamespace | string {
  if (process.getuid?.() !== 0) return "needs root to create a network namespace";
  if (spawnSync("ip", ["-V"]).status !== 0) return "needs iproute2 (`ip`)";
  const tag = String(process.pid % 100_000);
  const ns = `s12p${tag}`;
  const hostIf = `s12h${tag}`;
  const base = (process.pid % 63) * 4;
  const hostIp = `10.201.0.${base + 1}`;
  const peerIp = `10.201.0.${base + 2}`;
  const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  const close = () => {
    spawnSync("ip", ["netns", "del", ns]); // takes the veth pair with it
    spawnSync("ip", ["link", "del", hostIf]);
  };
  try {
    close(); // a leftover of a killed run with the same pid
    ip("netns", "add", ns);
    ip("link", "add", hostIf, "type", "veth", "peer", "name", "eth0", "netns", ns);
    ip("addr", "add", `${hostIp}/30`, "dev", hostIf);
    ip("link", "set", hostIf, "up");
    ip("-n", ns, "addr", "add", `${peerIp}/30`, "dev", "eth0");
    ip("-n", ns, "link", "set", "eth0", "up");
    ip("-n", ns, "link", "set", "lo", "up");
  } catch (err) {
    close();
    return `could not create a network namespace: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  return {
    hostIp, peerIp, close,
    async startWorker(coordinatorUrl, id, env = {}) {
      const proc = startChild({
        name: id, command: "ip", args: ["netns", "exec", ns, process.execPath, CLI, "worker", "--port", "3001", "--host", peerIp],
        cwd: REPO_ROOT,
        env: {
          PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", LOG_LEVEL: "info", COORDINATOR_URL: coordinatorUrl, WORKER_ID: id, WORKER_URL: `http://${peerIp}:3001`,
          HEARTBEAT_INTERVAL_MS: "200", THREADS: "1", PARALLEL: "4", MODELS_DIR: resolve(REPO_ROOT, "models"), ...env,
        },
      });
      await proc.waitListening();
      return proc;
    },
    async fetch(url, init = {}) {
      const script = `
        const [url, init] = JSON.parse(process.argv[1]);
        fetch(url, { method: init.method ?? "GET", headers: { "content-type": "application/json", ...(init.headers ?? {}) },
          body: init.body === undefined ? undefined : JSON.stringify(init.body), signal: AbortSignal.timeout(10000) })
          .then(async (r) => { const t = await r.text(); let b; try { b = JSON.parse(t); } catch { b = t; } console.log(JSON.stringify({ status: r.status, body: b })); })
          .catch((e) => { console.log(JSON.stringify({ status: 0, body: String(e) })); });`;
      const r = spawnSync("ip", ["netns", "exec", ns, process.execPath, "-e", script, JSON.stringify([url, init])], { encoding: "utf8", timeout: 15_000 });
      if (r.status !== 0) throw new Error(`request from the peer namespace failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    },
  };
}

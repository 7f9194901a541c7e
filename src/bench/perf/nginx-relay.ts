import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../common/free-port.js";
import { stopChild, trackChild } from "../../common/process-harness.js";
import { childPids } from "./proc-stats.js";

/**
 * nginx as the reference relay: one worker process (like our single-threaded coordinator), one
 * port per worker, plain reverse proxy with `proxy_buffering off` and keep-alive upstreams, as in
 * ../shared/perf-anchor.md. Installed from Debian with apt-get when missing (benchmarks only).
 * `limitConn`: at most that many requests in flight over all its ports together (`limit_conn`
 * keyed by the listen address, which every port shares); past it nginx answers 503 at once, the
 * plain proxy's refusal the overload section compares with. Refusals are not logged.
 */
export function nginxBinary(): string | undefined {
  for (const p of ["/usr/sbin/nginx", "/usr/bin/nginx"]) if (spawnSync(p, ["-v"]).status === 0) return p;
  return undefined;
}

export function ensureNginx(log: (s: string) => void): string | undefined {
  const found = nginxBinary();
  if (found !== undefined) return found;
  log("nginx is missing: installing the Debian package (apt-get)…");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  spawnSync("apt-get", ["update", "-qq"], { stdio: "ignore", env });
  const r = spawnSync("apt-get", ["install", "-y", "-qq", "nginx-light"], { stdio: "ignore", env });
  if (r.status !== 0) spawnSync("apt-get", ["install", "-y", "-qq", "nginx"], { stdio: "ignore", env });
  return nginxBinary();
}

export function nginxVersion(bin: string): string {
  const r = spawnSync(bin, ["-v"], { encoding: "utf8" });
  return (r.stderr || r.stdout).trim().replace(/^nginx version: /, "");
}

export interface NginxRelay {
  urls: string[];
  /** Master and worker pids (CPU and RSS are summed over them). */
  pids(): number[];
  stop(): Promise<void>;
}

export async function startNginx(bin: string, upstreams: string[], o: { limitConn?: number } = {}): Promise<NginxRelay> {
  const dir = await mkdtemp(join(tmpdir(), "perf-nginx-"));
  const ports = await Promise.all(upstreams.map(() => freePort()));
  const servers = upstreams.map((u, i) => {
    const up = new URL(u);
    return `
  upstream w${i} { server ${up.host}; keepalive 1024; }
  server {
    listen 127.0.0.1:${ports[i]} backlog=4096;
    location / {
      proxy_pass http://w${i};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;${o.limitConn === undefined ? "" : `
      limit_conn relay ${o.limitConn};`}
    }
  }`;
  });
  const conf = `worker_processes 1;
error_log ${dir}/error.log warn;
pid ${dir}/nginx.pid;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;${o.limitConn === undefined ? "" : `
  limit_conn_zone $server_addr zone=relay:1m;
  limit_conn_status 503;
  limit_conn_log_level info;`}
${servers.join("\n")}
}
`;
  await writeFile(join(dir, "nginx.conf"), conf);
  const child = trackChild(spawn(bin, ["-p", dir, "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] }));
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  // Ready once every port answers (any HTTP status).
  const deadline = Date.now() + 10_000;
  for (const url of urls) {
    for (;;) {
      try {
        await fetch(`${url}/worker/health`);
        break;
      } catch {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`nginx did not start (${dir})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  return {
    urls,
    pids: () => [child.pid!, ...childPids(child.pid!)],
    async stop() {
      await stopChild(child, 5000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

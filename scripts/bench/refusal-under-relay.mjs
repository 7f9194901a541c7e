#!/usr/bin/env node
// Refusals at overload while the coordinator relays ~1,000 paced streams: 4 sim workers (100 ms
// between tokens); a streams client (its own process) holds --streams open streams, which fill the
// coordinator's SYSTEM_MAX_SESSIONS (it asks for 10% more, so that a refusal in the opening burst still leaves it full); meanwhile a prober sends --rate requests/s (Poisson, keep-alive)
// that must be refused (503 system_sessions_full; QUEUE_SIZE=0, or --queue N for 429 queue_full with
// the queue full). Reports the refusals' latency (send → whole answer) p50/p99 and the coordinator's
// event-loop delay over the same window (monitorEventLoopDelay, via eld-probe.mjs). Bounded: one
// window of --window-s seconds per run; builds alternate, --reps each:
//   node scripts/bench/refusal-under-relay.mjs --old /work/main --new . [--streams 1000] [--rate 200] [--window-s 8] [--reps 2]
import { spawn } from "node:child_process";
import { Agent, request } from "node:http";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { arg, loadavg, median, quantile, startFleet } from "./coordinator-probe-lib.mjs";

const self = fileURLToPath(import.meta.url);

if (arg("role", "") === "streams") {
  // The streams client: opens N streams and reads them to their end; prints "open <n>" as they start.
  const url = arg("url");
  const n = Number(arg("streams"));
  const tokens = Number(arg("tokens"));
  const agent = new Agent({ keepAlive: true, maxSockets: n });
  const u = new URL(`${url}/coordinator/infer`);
  const body = JSON.stringify({ model: "any", prompt: "Tell a long story.", max_tokens: tokens });
  let open = 0;
  let done = 0;
  const statuses = {};
  // Opened 50 at a time, 100 ms apart: a burst of hundreds of prefills at once is refused in part.
  for (let i = 0; i < n; i++) {
    if (i % 50 === 0 && i > 0) await new Promise((r) => setTimeout(r, 100));
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (r) => {
      if (r.statusCode === 200) open++;
      else statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
      r.resume();
      r.on("end", () => {
        done++;
        if (done === n) process.exit(0);
      });
    });
    req.on("error", (err) => {
      done++;
      statuses[err.code ?? "error"] = (statuses[err.code ?? "error"] ?? 0) + 1;
    });
    req.end(body);
  }
  setInterval(() => process.stdout.write(`open ${open} ${JSON.stringify(statuses)}\n`), 200);
} else {
  const roots = { old: resolve(arg("old", "/work/main")), new: resolve(arg("new", ".")) };
  const streams = Number(arg("streams", "1000"));
  const rate = Number(arg("rate", "200"));
  const windowS = Number(arg("window-s", "8"));
  const reps = Number(arg("reps", "2"));
  const queue = arg("queue", "0");
  const arms = arg("arms", "old,new").split(",");
  const dir = mkdtempSync(join(tmpdir(), "refusal-"));
  const probe = fileURLToPath(new URL("./eld-probe.mjs", import.meta.url));
  const out = { old: [], new: [] };
  console.log(`load average at start: ${loadavg()}`);
  for (let rep = 0; rep < reps; rep++) {
    for (const arm of arms) {
      const eldFile = join(dir, `${arm}-${rep}.json`);
      const fleet = await startFleet({
        coordRoot: roots[arm], workerRoot: roots.new, n: 4,
        simArgs: ["--sim-itl-ms", "100", "--sim-itl-per-sequence-ms", "0", "--sim-prefill-base-ms", "0", "--sim-prefill-per-token-ms", "0", "--parallel", "256", "--context-size", "2048"],
        workerEnv: { WORKER_MAX_SESSIONS: "400", WORKER_MAX_KV_BYTES: "32GiB" },
        coordEnv: { SYSTEM_MAX_SESSIONS: String(streams), QUEUE_SIZE: queue, ELD_FILE: eldFile },
        coordNodeArgs: ["--import", probe],
      });
      const client = spawn(process.execPath, [self, "--role", "streams", "--url", fleet.coordinator.url, "--streams", String(Math.ceil(streams * 1.1)), "--tokens", String(Math.ceil((windowS + 17) * 10))],
        { stdio: ["ignore", "pipe", "inherit"] });
      let lastLine = "";
      client.stdout.on("data", (c) => (lastLine = String(c).trim().split("\n").pop()));
      try {
        // Wait for the streams to be open (the coordinator's sessions at its limit).
        const deadline = Date.now() + 60_000;
        for (;;) {
          const h = await (await fetch(`${fleet.coordinator.url}/coordinator/health`)).json();
          if (h.active_sessions >= streams) break;
          if (Date.now() > deadline) throw new Error(`only ${h.active_sessions} streams open (client: ${lastLine})`);
          await new Promise((r) => setTimeout(r, 200));
        }
        // Let the relay settle into its pace, then reset the delay histogram and probe.
        await new Promise((r) => setTimeout(r, 1000));
        process.kill(fleet.coordinator.pid, "SIGUSR2");
        const r = await probeRefusals(fleet.coordinator.url, rate, windowS);
        await new Promise((res) => setTimeout(res, 300));
        const eld = JSON.parse(readFileSync(eldFile, "utf8"));
        const row = { ...r, eld, load: loadavg() };
        out[arm].push(row);
        console.log(`rep ${rep + 1} ${arm}: ${r.count} refusals (${JSON.stringify(r.statuses)}), latency p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms max ${r.max.toFixed(1)} ms; ` +
          `event-loop delay p50 ${eld.p50} ms p99 ${eld.p99} ms max ${eld.max} ms; load ${row.load}`);
      } finally {
        client.kill("SIGKILL");
        await fleet.stop();
      }
    }
  }
  for (const arm of arms) {
    const rows = out[arm];
    if (rows.length === 0) continue;
    console.log(`${arm}: medians over ${rows.length} runs: refusal p50 ${median(rows.map((x) => x.p50)).toFixed(2)} ms, p99 ${median(rows.map((x) => x.p99)).toFixed(2)} ms; ` +
      `event-loop delay p50 ${median(rows.map((x) => x.eld.p50))} ms, p99 ${median(rows.map((x) => x.eld.p99))} ms`);
  }
  console.log(`load average at end: ${loadavg()}`);
}

/** Poisson arrivals at `rate`/s for `windowS` s; latency of each answer (ms) and status counts. */
async function probeRefusals(url, rate, windowS) {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const u = new URL(`${url}/coordinator/infer`);
  const body = JSON.stringify({ model: "any", prompt: "Hello", max_tokens: 8 });
  const lat = [];
  const statuses = {};
  const pending = [];
  const end = performance.now() + windowS * 1000;
  let t = performance.now();
  while (t < end) {
    t += (-Math.log(1 - Math.random()) / rate) * 1000;
    const wait = t - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    pending.push(new Promise((res) => {
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (r) => {
        r.resume();
        r.on("end", () => {
          const key = String(r.statusCode);
          statuses[key] = (statuses[key] ?? 0) + 1;
          if (r.statusCode !== 200) lat.push(performance.now() - t0);
          res();
        });
      });
      req.on("error", () => { statuses.error = (statuses.error ?? 0) + 1; res(); });
      req.end(body);
    }));
  }
  await Promise.all(pending);
  agent.destroy();
  return { count: lat.length, statuses, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), max: Math.max(...lat) };
}

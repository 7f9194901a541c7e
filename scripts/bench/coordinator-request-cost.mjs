#!/usr/bin/env node
// The coordinator's CPU per request: many short requests (1 output token) through a coordinator
// with sim workers, the coordinator's user+system CPU over the run divided by the requests.
// Compares two builds alternately (medians of the repetitions):
//   node scripts/bench/coordinator-request-cost.mjs --old /work/main --new . [--requests 2000] [--reps 3]
//     [--concurrency 8] [--prof DIR]   (--prof: the new build's coordinator runs with --cpu-prof into DIR)
//     [--refused]   (every measured request is refused: SYSTEM_MAX_SESSIONS=1, QUEUE_SIZE=0, one stream holds
//                    the session; the CPU of a refusal at overload)
// Workers come from the new build in both arms. Bounded: --requests per run, 120 s at most.
import { Agent, request } from "node:http";
import { resolve } from "node:path";
import { arg, cpuMs, loadavg, median, startFleet } from "./coordinator-probe-lib.mjs";

const roots = { old: resolve(arg("old", "/work/main")), new: resolve(arg("new", ".")) };
const requests = Number(arg("requests", "2000"));
const reps = Number(arg("reps", "3"));
const concurrency = Number(arg("concurrency", "8"));
const prof = arg("prof", undefined);
const arms = (arg("arms", "old,new")).split(",");
const refused = process.argv.includes("--refused");

const body = JSON.stringify({ model: "any", prompt: "Say hello to the coordinator in one word.", max_tokens: 1 });

async function load(url, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const u = new URL(`${url}/coordinator/infer`);
  let next = 0;
  let failed = 0;
  const one = () => new Promise((res) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (r) => {
      if (r.statusCode !== (refused ? 503 : 200)) failed++;
      r.resume();
      r.on("end", res);
      r.on("error", res);
    });
    req.on("error", () => { failed++; res(); });
    req.end(body);
  });
  const deadline = Date.now() + 120_000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count && Date.now() < deadline) {
      next++;
      await one();
    }
  }));
  agent.destroy();
  return { sent: next, failed };
}

const results = { old: [], new: [] };
console.log(`load average at start: ${loadavg()}`);
for (let rep = 0; rep < reps; rep++) {
  for (const arm of arms) {
    const fleet = await startFleet({
      coordRoot: roots[arm], workerRoot: roots.new, n: 2,
      simArgs: ["--sim-itl-ms", refused ? "20" : "1", "--sim-itl-per-sequence-ms", "0", "--sim-prefill-base-ms", "0", "--sim-prefill-per-token-ms", "0", "--parallel", "16", "--context-size", "4096"],
      coordNodeArgs: prof !== undefined && arm === "new" && rep === 0 ? ["--cpu-prof", "--cpu-prof-dir", prof] : [],
      ...(refused ? { coordEnv: { SYSTEM_MAX_SESSIONS: "1", QUEUE_SIZE: "0" } } : {}),
    });
    let hold;
    try {
      if (refused) {
        // One long stream holds the only session; every request measured is refused.
        hold = request({ host: "127.0.0.1", port: new URL(fleet.coordinator.url).port, path: "/coordinator/infer", method: "POST",
          headers: { "content-type": "application/json" } }, (r) => r.resume());
        hold.on("error", () => {});
        hold.end(JSON.stringify({ model: "any", prompt: "hold", max_tokens: 3000 }));
        for (;;) {
          const h = await (await fetch(`${fleet.coordinator.url}/coordinator/health`)).json();
          if (h.active_sessions >= 1) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      // Warm-up: JIT, connections.
      await load(fleet.coordinator.url, Math.min(300, requests));
      const c0 = cpuMs(fleet.coordinator.pid);
      const t0 = performance.now();
      const r = await load(fleet.coordinator.url, requests);
      const c1 = cpuMs(fleet.coordinator.pid);
      const us = ((c1 - c0) * 1000) / r.sent;
      results[arm].push(us);
      console.log(`rep ${rep + 1} ${arm}: ${r.sent} requests (${r.failed} not ${refused ? 503 : 200}) in ${((performance.now() - t0) / 1000).toFixed(1)} s; coordinator CPU ${(c1 - c0)} ms = ${us.toFixed(0)} µs/request; load ${loadavg()}`);
    } finally {
      hold?.destroy();
      await fleet.stop();
    }
  }
}
for (const arm of arms) console.log(`${arm}: median ${median(results[arm]).toFixed(0)} µs/request over ${results[arm].length} runs [${results[arm].map((x) => x.toFixed(0)).join(", ")}]`);
console.log(`load average at end: ${loadavg()}`);

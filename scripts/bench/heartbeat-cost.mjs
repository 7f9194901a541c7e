#!/usr/bin/env node
// The coordinator's CPU per heartbeat: a sim worker's real health body plus a cache section (a
// snapshot first, then one `add` event per beat, as a worker sends on each stream end that kept a
// prefix), posted from 8 worker ids in turn over keep-alive connections. Coordinator CPU over the
// run / beats. Compares two builds alternately, medians:
//   node scripts/bench/heartbeat-cost.mjs --old /work/main --new . [--beats 4000] [--reps 3] [--prof DIR]
import { Agent, request } from "node:http";
import { resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { arg, cpuMs, loadavg, median, startServer } from "./coordinator-probe-lib.mjs";

const roots = { old: resolve(arg("old", "/work/main")), new: resolve(arg("new", ".")) };
const beats = Number(arg("beats", "4000"));
const reps = Number(arg("reps", "3"));
const prof = arg("prof", undefined);
const WORKERS = 8;
const BLOCKS = 8;

const sim = await startServer(roots.new, ["worker", "--engine", "sim", "--worker-id", "probe"], { COORDINATOR_URL: "http://127.0.0.1:9" }, "/worker/health");
const health = await (await fetch(`${sim.url}/worker/health`)).json();
await sim.stop();

const key = () => randomBytes(8).toString("hex");
const blocks = () => Array.from({ length: BLOCKS }, key);

function post(agent, url, payload) {
  const u = new URL(`${url}/coordinator/health/heartbeat`);
  const text = JSON.stringify(payload);
  return new Promise((res, rej) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent,
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) } }, (r) => {
      let b = "";
      r.setEncoding("utf8");
      r.on("data", (c) => (b += c));
      r.on("end", () => (r.statusCode === 200 ? res(JSON.parse(b)) : rej(new Error(`${r.statusCode} ${b}`))));
    });
    req.on("error", rej);
    req.end(text);
  });
}

async function run(url, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: WORKERS });
  const state = Array.from({ length: WORKERS }, (_, i) => ({ id: `hb-${i}`, epoch: `e${i}-${Date.now()}`, seq: 0, nextId: 1, acked: undefined }));
  const beat = (w) => {
    const hb = { worker_id: w.id, worker_url: `http://127.0.0.1:${20000 + Number(w.id.slice(3))}`, timestamp: Date.now(), interval_ms: 250,
      health: { ...health, worker_id: w.id } };
    if (w.acked === undefined) {
      // First beat: a snapshot of 64 cached entries.
      const snapshot = Array.from({ length: 64 }, () => ({ id: w.nextId++, blocks: blocks() }));
      w.seq += 1;
      hb.cache = { epoch: w.epoch, seq: w.seq, block_chars: 64, snapshot };
    } else {
      w.seq += 1;
      hb.cache = { epoch: w.epoch, seq: w.seq, block_chars: 64, since: w.seq - 1, events: [{ seq: w.seq, op: "add", id: w.nextId++, blocks: blocks() }] };
    }
    return post(agent, url, hb).then((ack) => { w.acked = ack.cache ?? undefined; if (ack.cache === null) w.acked = undefined; });
  };
  for (const w of state) await beat(w);
  let sent = 0;
  await Promise.all(state.map(async (w) => {
    while (sent < count) {
      sent++;
      await beat(w);
    }
  }));
  agent.destroy();
  return sent;
}

const results = { old: [], new: [] };
console.log(`load average at start: ${loadavg()}; health body ${JSON.stringify(health).length} bytes`);
for (let rep = 0; rep < reps; rep++) {
  for (const arm of ["old", "new"]) {
    const c = await startServer(roots[arm], ["coordinator"], { HEARTBEAT_INTERVAL_MS: "250" }, "/coordinator/health",
      prof !== undefined && rep === 0 ? ["--cpu-prof", "--cpu-prof-dir", resolve(prof, arm)] : []);
    try {
      await run(c.url, 500);
      const c0 = cpuMs(c.pid);
      const n = await run(c.url, beats);
      const us = ((cpuMs(c.pid) - c0) * 1000) / n;
      results[arm].push(us);
      console.log(`rep ${rep + 1} ${arm}: ${n} beats, ${us.toFixed(0)} µs coordinator CPU per beat; load ${loadavg()}`);
    } finally {
      await c.stop();
    }
  }
}
for (const arm of ["old", "new"]) console.log(`${arm}: median ${median(results[arm]).toFixed(0)} µs/beat [${results[arm].map((x) => x.toFixed(0)).join(", ")}]`);
console.log(`load average at end: ${loadavg()}`);

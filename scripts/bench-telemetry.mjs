#!/usr/bin/env node
// Cost of the telemetry calls on the per-token paths, in ns per call (after `npm run build`):
// the worker's per-token hook, the relay's per-write hook, and prom-client's own histogram for
// comparison. Prints a table; writes JSON with --json PATH. Repetitions alternate the cases.
import { writeFileSync } from "node:fs";
import { Histogram, Registry } from "prom-client";
import { systemClock } from "../dist/src/common/clock.js";
import { CoordinatorTelemetry } from "../dist/src/coordinator/telemetry/coordinator-telemetry.js";
import { SessionTracker } from "../dist/src/coordinator/fleet/session-tracker.js";
import { WorkerTable } from "../dist/src/coordinator/fleet/worker-table.js";
import { WorkerMetrics } from "../dist/src/worker/worker-metrics.js";

const N = 1_000_000;
const REPS = 5;
const clock = systemClock; // the real clock: its cost is part of the hook's
const telemetry = new CoordinatorTelemetry({ table: new WorkerTable(clock, 1000), tracker: new SessionTracker(), clock, defaultMetrics: false });
const rt = telemetry.begin({ requestId: "bench", model: "m", maxTokens: N });
rt.streamStarted("w1", 64);
rt.onFirstToken();
const view = () => ({ info: { modelId: "m", contextSize: 1, kvBytesPerToken: 1 }, sessions: 0, maxSessions: 1, slotsBusy: 0, slotsTotal: 1, waiting: 0, kvHeldBytes: 0, kvReservedBytes: 0, maxKvBytes: 1, keptSessions: 0, keptKvBytes: 0, draining: false });
const wm = new WorkerMetrics(view, () => performance.now(), { vllm: true, defaultMetrics: false });
const promHist = new Histogram({ name: "h_seconds", help: "h", buckets: [0.001, 0.01, 0.1, 1], registers: [new Registry()] });

let last = 0;
const cases = {
  "baseline (empty call)": () => {},
  "worker: token() per generated token": () => { last = wm.token(0, last); },
  "coordinator: onTokens(1) per client write": () => rt.onTokens(1),
  "coordinator: onTokens(8) per client write": () => rt.onTokens(8),
  "performance.now() (reference)": () => performance.now(),
  "prom-client Histogram.observe (reference)": () => promHist.observe(0.02),
};
const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, f] of Object.entries(cases)) {
    for (let i = 0; i < 10_000; i++) f();
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) f();
    results[name].push(Number(process.hrtime.bigint() - start) / N);
  }
}
const rows = Object.entries(results).map(([name, v]) => ({ case: name, median_ns: [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] }));
console.log("| case | median ns/call |\n|---|---|");
for (const r of rows) console.log(`| ${r.case} | ${r.median_ns.toFixed(1)} |`);
const i = process.argv.indexOf("--json");
if (i !== -1 && process.argv[i + 1]) writeFileSync(process.argv[i + 1], JSON.stringify({ n: N, reps: REPS, rows }, null, 2));

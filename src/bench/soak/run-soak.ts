import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { loadOptions } from "../../common/config-parse.js";
import { createRng } from "../../common/rng.js";
import { startSimFleet } from "../perf/fleet.js";
import { SoakClient, SOAK_OUTCOMES } from "./soak-client.js";
import { heldAfter, takeSample, windowMedian, type Sample, type Watched } from "./soak-monitor.js";
import { soakOptions, type SoakConfig } from "./soak-options.js";

/**
 * `npm run soak`: a coordinator and sim workers under a steady load at 80% of the fleet's session
 * capacity for 10 minutes (configurable), with a fifth of the clients hanging up at random. Prints
 * every process's RSS and heap and every session count over time; fails (exit 1) when any process's
 * RSS grew 10% or more from the end of the warm-up (minute 1) to the end, when any session, slot or
 * KV reservation is still held once the load stopped, or when any request hung or failed.
 */
const SIM_ITL_MS = 20;
const MiB = 1024 ** 2;

async function main(argv: string[]): Promise<number> {
  const { config } = loadOptions(soakOptions, argv, {});
  const capacity = config.workers * config.workerMaxSessions;
  const loops = Math.max(1, Math.round(config.load * capacity));
  const fleet = await startSimFleet({
    workers: config.workers,
    simArgs: ["--sim-itl-ms", String(SIM_ITL_MS), "--parallel", String(config.workerMaxSessions), "--worker-max-sessions", String(config.workerMaxSessions)],
  });
  const watched: Watched[] = [
    { name: "coordinator", pid: fleet.coordinator.pid, url: fleet.coordinator.url, role: "coordinator" },
    ...fleet.workers.map((w, i) => ({ name: `worker-${i + 1}`, pid: w.pid, url: w.url, role: "worker" as const })),
  ];
  log(`soak: ${config.durationS} s, ${loops} streams in flight (${Math.round(config.load * 100)}% of ${config.workers} workers × ${config.workerMaxSessions} sessions), ` +
    `${Math.round(config.disconnect * 100)}% random hang-ups; load average ${loadavg()[0]!.toFixed(1)}`);
  const client = new SoakClient({
    url: fleet.coordinator.url, rng: createRng(config.seed), disconnect: config.disconnect,
    requestTimeoutMs: config.requestTimeoutMs, conversations: 2 * capacity, itlMs: SIM_ITL_MS,
  });
  const samples: Sample[] = [];
  const stop = new AbortController();
  const t0 = performance.now();
  const elapsedS = () => (performance.now() - t0) / 1000;
  try {
    const running = client.run(loops, stop.signal);
    log(header(watched));
    samples.push(await takeSample(watched, 0));
    while (elapsedS() < config.durationS) {
      await sleep(Math.min(config.sampleS * 1000, (config.durationS - elapsedS()) * 1000));
      const s = await takeSample(watched, elapsedS());
      samples.push(s);
      log(line(s, watched, client));
    }
    stop.abort();
    await running;
    const held = await heldAfter(watched, 30_000);
    const verdict = judge(config, samples, watched, client, held);
    log("");
    for (const l of verdict.lines) log(l);
    log(verdict.ok ? "soak: PASS" : "soak: FAIL");
    if (config.json !== undefined) {
      await writeFile(config.json, JSON.stringify({ config, capacity, loops, samples, held, counts: Object.fromEntries(client.counts), verdict }, null, 2));
    }
    return verdict.ok ? 0 : 1;
  } finally {
    stop.abort();
    await client.close();
    await fleet.stop();
  }
}

function judge(config: SoakConfig, samples: Sample[], watched: Watched[], client: SoakClient, held: Record<string, number>) {
  const endS = samples[samples.length - 1]!.tS;
  const warmS = Math.min(config.warmupS, endS / 3);
  const lines: string[] = [];
  let ok = true;
  lines.push(`RSS (median of ${config.windowS} s windows): after the warm-up (${warmS.toFixed(0)} s) → at the end (${endS.toFixed(0)} s)`);
  for (const w of watched) {
    const rss = (p: { rssBytes: number }) => p.rssBytes;
    const heap = (p: { heapUsedBytes: number | undefined }) => p.heapUsedBytes;
    const a = windowMedian(samples, w.name, warmS, warmS + config.windowS, rss);
    const b = windowMedian(samples, w.name, endS - config.windowS, endS, rss);
    const ha = windowMedian(samples, w.name, warmS, warmS + config.windowS, heap);
    const hb = windowMedian(samples, w.name, endS - config.windowS, endS, heap);
    const growth = a !== undefined && b !== undefined ? b / a - 1 : undefined;
    const fine = growth !== undefined && growth < config.maxRssGrowth;
    ok &&= fine;
    lines.push(`  ${w.name.padEnd(12)} RSS ${mib(a)} → ${mib(b)} MiB (${growth === undefined ? "?" : `${(growth * 100).toFixed(1)}%`}), ` +
      `heap ${mib(ha)} → ${mib(hb)} MiB ${fine ? "ok" : `FAIL (limit ${(config.maxRssGrowth * 100).toFixed(0)}%)`}`);
  }
  const leaked = Object.values(held).reduce((s, n) => s + Math.abs(n), 0);
  ok &&= leaked === 0;
  lines.push(`held after the load stopped (sessions, busy slots, KV reservations): ${JSON.stringify(held)} ${leaked === 0 ? "ok" : "FAIL"}`);
  const c = Object.fromEntries(client.counts);
  const total = SOAK_OUTCOMES.reduce((s, o) => s + client.counts.get(o)!, 0);
  const bad = client.counts.get("hung")! + client.counts.get("error")!;
  ok &&= bad === 0;
  lines.push(`requests: ${total} (${SOAK_OUTCOMES.map((o) => `${o} ${c[o]}`).join(", ")}) ${bad === 0 ? "ok" : "FAIL (hung or failed requests)"}`);
  return { ok, lines, warmS, endS, leaked };
}

function header(watched: Watched[]): string {
  return ["     t", ...watched.map(columnLabel), "requests"].join(" | ");
}

const columnLabel = (w: Watched) => `${w.name}: RSS / heap MiB, sessions`;

function line(s: Sample, watched: Watched[], client: SoakClient): string {
  const procs = watched.map((w) => {
    const p = s.procs[w.name]!;
    return `${mib(p.rssBytes).padStart(6)} / ${mib(p.heapUsedBytes).padStart(5)}, ${String(p.sessions).padStart(3)}`.padEnd(columnLabel(w).length);
  });
  const c = client.counts;
  return [`${s.tS.toFixed(0).padStart(5)}s`, ...procs, `ok ${c.get("ok")} err ${c.get("error")} rej ${c.get("rejected")} hang-ups ${c.get("aborted")} hung ${c.get("hung")}`].join(" | ");
}

const mib = (b: number | undefined) => (b === undefined ? "?" : (b / MiB).toFixed(1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const log = (l: string) => process.stdout.write(`${l}\n`);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`soak: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(2);
  },
);

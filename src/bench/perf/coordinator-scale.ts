import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { stopChild, trackChild } from "../../common/process-harness.js";
import { startQuiet, waitRoutable, type Served } from "./fleet.js";
import { table, verdict } from "./markdown.js";
import { mb, measure } from "./measure.js";
import { cpuMs, rssBytes } from "./proc-stats.js";
import type { SectionResult, SuiteMode } from "./suite-types.js";

/**
 * 8. Scale of one coordinator: one coordinator, 100 sim workers (hosted 25 to a process: see
 * sim-worker-host.ts) heartbeating every second, then 5,000 concurrent streams through it.
 * Measured: the coordinator's CPU and RSS idle (heartbeats only: the cost per heartbeat and per
 * worker) and under the streams, TTFT p50/p99, and the time a restarted coordinator (kill -9, then
 * a fresh process on the same port) takes to rebuild its table: first 200 on health, then all
 * workers routable. Quick mode: 10 workers, 200 streams.
 */
const HOST = fileURLToPath(new URL("./sim-worker-host.js", import.meta.url));
const HEARTBEAT_MS = 1000;
const WORKERS_PER_HOST = 25;

interface Scale {
  workers: number;
  streams: number;
  outputTokens: number;
  idle: { seconds: number; cpuMsPerS: number; cpuUsPerHeartbeat: number; rssMb: number; baselineCpuMsPerS: number };
  load: { peakStreams: number; rate: number; notOkReasons: string[]; cpuMs: number; cpuUsPerToken: number; peakRssMb: number; completed: number; notOk: number; ttftP50: number; ttftP99: number; tokensPerS: number; wallS: number };
  restart: { listenMs: number; routableMs: number; routableAfterListenMs: number };
}

function startHost(n: number, prefix: string, coordinatorUrl: string, simArgs: string[]): Promise<ChildProcess> {
  const child = trackChild(spawn(process.execPath, [HOST, String(n), prefix, ...simArgs], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", COORDINATOR_URL: coordinatorUrl, HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS) },
    stdio: ["ignore", "pipe", "pipe"],
  }));
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (err = (err + c).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding("utf8").on("data", (c: string) => {
      if (c.includes("ready")) resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`sim worker host exited (${code}): ${err}`)));
  });
}

/** The most streams the coordinator relayed at once (its own gauge, read every 500 ms). */
class PeakStreams {
  peak = 0;
  private readonly timer = setInterval(() => void this.read(), 500);

  constructor(private readonly url: string) {}

  private async read(): Promise<void> {
    try {
      const text = await (await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
      const m = /^inference_coordinator_streams_active(?:\{[^}]*\})? (\d+)/m.exec(text);
      if (m) this.peak = Math.max(this.peak, Number(m[1]));
    } catch {
      // a missed sample under load
    }
  }

  async stop(): Promise<number> {
    clearInterval(this.timer);
    await this.read();
    return this.peak;
  }
}

/** The coordinator's CPU time over `seconds` of doing nothing but taking heartbeats (ms of CPU per s). */
async function idleCpu(pid: number, seconds: number): Promise<number> {
  const before = cpuMs(pid);
  const t = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return (cpuMs(pid) - before) / ((performance.now() - t) / 1000);
}

export async function coordinatorScale(mode: SuiteMode): Promise<SectionResult> {
  const workers = mode.quick ? 10 : 100;
  const streams = mode.quick ? 200 : 5000;
  const idleS = mode.quick ? 3 : 15;
  // Streams open at `rate` per second and last about `outputTokens` seconds, so all of them are
  // open together for a while: opening 5,000 connections in one instant measures the client's
  // and the kernel's accept queues (connect timeouts, resets), not the coordinator.
  const outputTokens = mode.quick ? 4 : 30;
  const rate = mode.quick ? 100 : 500;
  const parallel = Math.ceil((streams / workers) * 1.25);
  // Slow tokens: 5,000 streams × 1 token/s stays inside what one coordinator relays (section 2),
  // so what is measured is holding the streams and the table, not relay throughput.
  const simArgs = ["--sim-itl-ms", "1000", "--sim-itl-per-sequence-ms", "0", "--sim-prefill-base-ms", "5", "--parallel", String(parallel),
    "--worker-max-sessions", String(parallel), "--model-alias", "default"]; // the bench client asks for "default"
  const coordEnv = {
    HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), SYSTEM_MAX_SESSIONS: String(streams * 2), QUEUE_SIZE: String(streams),
    SCHEDULER_PROFILE: "least-load",
  };
  let coordinator: Served = await startQuiet(["coordinator"], "/coordinator/health", coordEnv);
  const baselineCpuMsPerS = await idleCpu(coordinator.pid, Math.min(idleS, 5));
  const hosts: ChildProcess[] = [];
  try {
    mode.log(`coordinator scale: starting ${workers} sim workers`);
    for (let i = 0; i * WORKERS_PER_HOST < workers; i++) {
      hosts.push(await startHost(Math.min(WORKERS_PER_HOST, workers - i * WORKERS_PER_HOST), `sim-h${i + 1}`, coordinator.url, simArgs));
    }
    await waitRoutable(coordinator.url, workers, 60_000);
    const cpuMsPerS = await idleCpu(coordinator.pid, idleS);
    const idleRss = rssBytes(coordinator.pid);
    const heartbeatsPerS = workers * (1000 / HEARTBEAT_MS);
    const idle = {
      seconds: idleS, cpuMsPerS, baselineCpuMsPerS, rssMb: mb(idleRss),
      cpuUsPerHeartbeat: (Math.max(0, cpuMsPerS - baselineCpuMsPerS) * 1000) / heartbeatsPerS,
    };

    mode.log(`coordinator scale: ${streams} concurrent streams`);
    const t = performance.now();
    const peak = new PeakStreams(coordinator.url);
    const m = await measure({
      target: "openai-chat", urls: [coordinator.url], concurrency: streams, requestRate: rate, numRequests: streams,
      inputTokens: 32, outputTokens, durationS: 300,
    }, () => [coordinator.pid]);
    const peakStreams = await peak.stop();
    const r = m.report;
    const notOkReasons = r.requests.byReason.filter((x) => x.outcome !== "completed").slice(0, 5).map((b) => `${b.count} × ${b.status || "no answer"} ${b.reason}`);
    for (const why of notOkReasons) mode.log(`  not ok: ${why}`);
    const tokens = r.throughput.outputTokensPerS * r.durationS;
    const load = {
      cpuMs: m.cpuMs, cpuUsPerToken: tokens > 0 ? (m.cpuMs * 1000) / tokens : 0, peakRssMb: mb(m.peakRssBytes),
      completed: r.requests.completed, notOk: r.requests.total - r.requests.completed,
      ttftP50: r.latencyMs.ttft?.p50 ?? NaN, ttftP99: r.latencyMs.ttft?.p99 ?? NaN, tokensPerS: r.throughput.outputTokensPerS,
      wallS: (performance.now() - t) / 1000, peakStreams, rate, notOkReasons,
    };

    mode.log("coordinator scale: kill -9 and restart");
    const port = Number(new URL(coordinator.url).port);
    coordinator.child.kill("SIGKILL");
    await new Promise((res) => coordinator.child.once("exit", res));
    const t0 = performance.now();
    coordinator = await startQuiet(["coordinator"], "/coordinator/health", coordEnv, [], port);
    const listenMs = performance.now() - t0;
    await waitRoutable(coordinator.url, workers, 30_000);
    const routableMs = performance.now() - t0;
    const restart = { listenMs, routableMs, routableAfterListenMs: routableMs - listenMs };

    const data: Scale = { workers, streams, outputTokens, idle, load, restart };
    return { title: "8. Scale of one coordinator", markdown: markdown(data, parallel), data };
  } finally {
    await Promise.all([...hosts.map((h) => stopChild(h, 10_000)), coordinator.stop()]);
  }
}

function markdown(d: Scale, parallel: number): string {
  return [
    `One coordinator; ${d.workers} sim workers (${WORKERS_PER_HOST} per process, each its own port, id, heartbeat sender and`,
    `session table), heartbeat every ${HEARTBEAT_MS} ms, parallel ${parallel} each, 1 s between tokens; scheduler least-load.`,
    `The load: ${d.streams.toLocaleString("en-US")} OpenAI chat streams (32 prompt tokens, ${d.outputTokens} output tokens, so ~${d.outputTokens} s each) opened at`,
    `${d.load.rate} per second, from the bench client in the suite's own process; the coordinator's own gauge counted`,
    `**${d.load.peakStreams.toLocaleString("en-US")} streams open at once** at the peak. All of it on this shared 2-core machine (other`,
    "work running beside it: see the load average), run once.",
    "",
    table(["what", "value", "note"], [
      ["coordinator CPU, idle, no workers", `${d.idle.baselineCpuMsPerS.toFixed(1)} ms/s`, "timers, metrics"],
      [`coordinator CPU, idle, ${d.workers} workers heartbeating`, `${d.idle.cpuMsPerS.toFixed(1)} ms/s`, `${(d.idle.cpuMsPerS / 10).toFixed(2)} % of one core`],
      ["heartbeat handling cost", `${d.idle.cpuUsPerHeartbeat.toFixed(0)} µs per heartbeat`,
        `${((d.idle.cpuUsPerHeartbeat * 1000) / HEARTBEAT_MS / 1000).toFixed(2)} ms of CPU per worker per second at a 1 s interval`],
      ["coordinator RSS, idle with the workers", `${d.idle.rssMb.toFixed(0)} MB`, ""],
      ["peak concurrent streams (coordinator gauge)", d.load.peakStreams, verdict(d.load.peakStreams >= d.streams * 0.9, "< 90 % of the target")],
      [`${d.streams.toLocaleString("en-US")} streams: completed / not ok`, `${d.load.completed} / ${d.load.notOk}`, verdict(d.load.notOk === 0, d.load.notOkReasons.join(", "))],
      ["TTFT p50 / p99", `${d.load.ttftP50.toFixed(0)} / ${d.load.ttftP99.toFixed(0)} ms`, "includes the sim's first decode step (1,000 ms)"],
      ["coordinator CPU under the streams", `${(d.load.cpuMs / 1000).toFixed(1)} s over ${d.load.wallS.toFixed(0)} s`, `${d.load.cpuUsPerToken.toFixed(0)} µs per relayed token, prefill and admission included`],
      ["coordinator peak RSS under the streams", `${d.load.peakRssMb.toFixed(0)} MB`, `${((d.load.peakRssMb - d.idle.rssMb) * 1024 / d.streams).toFixed(1)} KB per stream above idle`],
      ["output tokens/s relayed", d.load.tokensPerS, ""],
      ["restart (kill -9): new process answering health", `${d.restart.listenMs.toFixed(0)} ms`, "node start + config"],
      [`restart: all ${d.workers} workers routable`, `${d.restart.routableMs.toFixed(0)} ms`, `${d.restart.routableAfterListenMs.toFixed(0)} ms after listening; one heartbeat interval is ${HEARTBEAT_MS} ms`],
    ]),
    "",
    "Reading it: CPU time per heartbeat and the restart times are costs that hold on any machine. The",
    "stream rows hold only when the machine has cores to spare: where other work keeps the load average",
    "far above the core count, each runnable process gets its share of a core, the coordinator's event loop",
    "accepts connections late (the client's connects time out after undici's 10 s: und_err_connect_timeout),",
    "and sim worker hosts starved the same way miss three heartbeats, expire, and requests meet 503",
    "no_workers. Then the numbers measure the machine, not the coordinator: compare its CPU seconds with",
    "the run's length (a coordinator short of work uses a full core before it refuses anything).",
  ].join("\n");
}

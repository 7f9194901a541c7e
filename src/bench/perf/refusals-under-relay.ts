import { startChild } from "../../common/process-harness.js";
import type { BenchReport } from "../report.js";
import { CLI, startSimFleet, type Fleet } from "./fleet.js";
import { measure, median, type LoadSpec } from "./measure.js";
import { startNginx, type NginxRelay } from "./nginx-relay.js";
import type { SuiteMode } from "./suite-types.js";

/**
 * The overload section's second part: how fast a refusal comes while the relay is busy. A
 * background load keeps `streams` paced streams open (50 ms apart, 4 sim workers) through the
 * relay, which is set to admit exactly that many: the coordinator with SYSTEM_MAX_SESSIONS =
 * streams and no admission queue, nginx with `limit_conn` = streams in front of the same workers (answering 503 at once).
 * Once every stream is open on the workers (their health says so), a probe sends Poisson arrivals at
 * `rate` for `probeS` seconds; each must be refused, and its latency is the time to the refusal.
 * The background is an `inference-engine bench` process of its own (parsing 1,000 streams' events
 * would delay the probe's own event loop, and the probe would measure its client), with twice as
 * many spare requests as streams: on this machine the coordinator refuses ~30% of 1,000 streams
 * opened at once (system_sessions_full while its view of the workers lags, no_workers while their
 * heartbeats are late), and a refused stream is sent again until all are open; it is stopped
 * after the probe and the workers drained before the other relay's turn.
 * Goal: the coordinator's refusals ≤ 5 ms at p99.
 */
export interface RefusalSide {
  /** Per repetition: refusal latency p50 and p99 (ms), requests refused, requests admitted anyway. */
  p50: number[];
  p99: number[];
  refused: number[];
  admitted: number[];
  /** Streams open on the workers when each probe started and when it ended. */
  openAtStart: number[];
  openAtEnd: number[];
}

export interface RefusalsUnderRelay {
  streams: number;
  rate: number;
  probeS: number;
  reps: number;
  coordinator: RefusalSide;
  nginx: RefusalSide | undefined;
}

const ITL_MS = 50;
const WORKERS = 4;

export async function refusalsUnderRelay(mode: SuiteMode, nginxBin: string | undefined, rate: number): Promise<RefusalsUnderRelay> {
  const streams = mode.quick ? 50 : 1000;
  const probeS = mode.quick ? 2 : 10;
  const reps = mode.quick ? 1 : 2;
  // Long enough to outlast the ramp (all streams open) and the probe; aborted after the probe.
  const rampS = mode.quick ? 10 : 30;
  const tokens = Math.ceil(((rampS + probeS + 5) * 1000) / ITL_MS);
  const fleet = await startSimFleet({
    workers: WORKERS,
    simArgs: ["--sim-itl-ms", String(ITL_MS), "--sim-itl-per-sequence-ms", "0", "--sim-prefill-base-ms", "0", "--sim-prefill-per-token-ms", "0", "--parallel", "256"],
    workerEnv: { WORKER_MAX_SESSIONS: "400" },
    // Refused at once past the limit, as nginx's limit_conn does: no admission queue.
    coordinatorEnv: { SYSTEM_MAX_SESSIONS: String(streams), QUEUE_SIZE: "0" },
  });
  let nginx: NginxRelay | undefined;
  const side = (): RefusalSide => ({ p50: [], p99: [], refused: [], admitted: [], openAtStart: [], openAtEnd: [] });
  const out: RefusalsUnderRelay = { streams, rate, probeS, reps, coordinator: side(), nginx: nginxBin ? side() : undefined };
  try {
    if (nginxBin !== undefined) nginx = await startNginx(nginxBin, fleet.workers.map((w) => w.url), { limitConn: streams });
    const relays: [RefusalSide, LoadSpec["target"], string[]][] = [[out.coordinator, "seed", [fleet.coordinator.url]]];
    if (nginx && out.nginx) relays.push([out.nginx, "worker-generate", nginx.urls]);
    for (let i = 0; i < reps; i++) {
      for (const [into, target, urls] of relays) {
        mode.log(`overload: refusals while ${streams} streams relay through ${target === "seed" ? "the coordinator" : "nginx"}, rep ${i + 1}`);
        const background = startChild({
          name: "background load", command: process.execPath, keepLogs: false,
          args: [
            CLI, "bench", "--target", target, "--url", urls.join(","), "--concurrency", String(streams),
            "--num-requests", String(streams * 3), "--input-tokens", "16", "--output-tokens", String(tokens),
            "--duration-s", String(rampS + probeS + 30), "--progress", "off", "--json",
          ],
          env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp" },
        });
        try {
          into.openAtStart.push(await waitDecoding(fleet, (n) => n >= streams, rampS * 1000));
          const probe = await measure({ target, urls, requestRate: rate, numRequests: Math.ceil(rate * probeS), inputTokens: 32, outputTokens: 16, durationS: probeS, seed: 100 + i }, () => []);
          into.openAtEnd.push(await decoding(fleet));
          record(into, probe.report);
        } finally {
          await background.stop(2000);
          // The next turn starts from idle workers.
          await waitDecoding(fleet, (n) => n === 0, 30_000);
        }
      }
    }
  } finally {
    await nginx?.stop();
    await fleet.stop();
  }
  return out;
}

function record(into: RefusalSide, r: BenchReport): void {
  into.p50.push(r.latencyMs.rejection?.p50 ?? NaN);
  into.p99.push(r.latencyMs.rejection?.p99 ?? NaN);
  into.refused.push(r.requests.rejected);
  into.admitted.push(r.requests.completed);
}

/** Streams open on the fleet's workers now: sessions decoding or waiting for a slot (their health's `running` + `waiting`). */
async function decoding(fleet: Fleet): Promise<number> {
  const counts = await Promise.all(fleet.workers.map(async (w) => {
    try {
      const res = await fetch(`${w.url}/worker/health`);
      const h = (await res.json()) as { running?: number; waiting?: number };
      return (h.running ?? 0) + (h.waiting ?? 0);
    } catch {
      return 0;
    }
  }));
  return counts.reduce((a, b) => a + b, 0);
}

/** Polls until `done(decoding)` or `timeoutMs` passes; returns the last count either way. */
async function waitDecoding(fleet: Fleet, done: (n: number) => boolean, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const n = await decoding(fleet);
    if (done(n) || performance.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Median over the repetitions that measured something (a probe with no refusal has no latency); NaN for none. */
export function med(xs: number[]): number {
  const measured = xs.filter(Number.isFinite);
  return measured.length > 0 ? median(measured) : NaN;
}

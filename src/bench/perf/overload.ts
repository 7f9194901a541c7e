import { startSimFleet } from "./fleet.js";
import { mb, measure } from "./measure.js";
import { fmt, table, verdict } from "./markdown.js";
import { med, refusalsUnderRelay, type RefusalsUnderRelay } from "./refusals-under-relay.js";
import type { SectionResult, SuiteMode } from "./suite-types.js";

/**
 * 5. Overload: 2 sim workers holding 8 sessions each (16 in all). Capacity in requests/s =
 * 16 sessions / a request's duration, measured unloaded. Then Poisson arrivals at 5× that rate:
 * admitted requests' TTFT p99 against the unloaded p99, the latency of rejections, and the
 * coordinator's RSS over time. Then refusals at that rate while 1,000 streams relay, side by side
 * with nginx's `limit_conn` (refusals-under-relay.ts).
 * Targets: admitted p99 TTFT ≤ 2× unloaded; rejections ≤ 5 ms p99, idle and while 1,000 streams relay.
 */
export async function overload(mode: SuiteMode, nginxBin: string | undefined): Promise<SectionResult> {
  const sessions = 8;
  const fleet = await startSimFleet({
    workers: 2,
    simArgs: ["--sim-itl-ms", "20", "--sim-itl-per-sequence-ms", "0.5", "--sim-prefill-base-ms", "2", "--parallel", String(sessions)],
    workerEnv: { WORKER_MAX_SESSIONS: String(sessions) },
    // At capacity a request is refused at once (the seed's behaviour), not queued: this section
    // measures refusals, which a queue would turn into waits.
    coordinatorEnv: { QUEUE_SIZE: "0" },
  });
  const tokens = mode.quick ? 16 : 50;
  let first: { md: string; data: Record<string, unknown>; rate: number };
  try {
    mode.log("overload: unloaded");
    // Warm-up (connections, JIT), unrecorded.
    await measure({ target: "seed", urls: [fleet.coordinator.url], concurrency: 2, numRequests: 6, inputTokens: 32, outputTokens: tokens, durationS: 30 }, () => []);
    const base = await measure({
      target: "seed", urls: [fleet.coordinator.url], concurrency: 2, numRequests: mode.quick ? 6 : 40, inputTokens: 32, outputTokens: tokens, durationS: 60,
    }, () => [fleet.coordinator.pid]);
    const reqS = base.report.latencyMs.e2e!.mean / 1000;
    const capacity = (2 * sessions) / reqS;
    const rate = 5 * capacity;
    const durationS = mode.quick ? 2 : 20;
    mode.log(`overload: ${rate.toFixed(1)} req/s offered for ${durationS} s`);
    const over = await measure({
      target: "seed", urls: [fleet.coordinator.url], requestRate: rate, numRequests: Math.ceil(rate * durationS), inputTokens: 32, outputTokens: tokens, durationS,
    }, () => [fleet.coordinator.pid]);
    const b = base.report.latencyMs.ttft!;
    const o = over.report.latencyMs.ttft;
    const rej = over.report.latencyMs.rejection;
    const ratio = o ? o.p99 / b.p99 : NaN;
    const rss = over.rssSamples;
    const step = Math.max(1, Math.floor(rss.length / 10));
    const md = [
      `2 sim workers × ${sessions} sessions, ${tokens}-token answers; the coordinator's admission queue off (QUEUE_SIZE=0: refused at once at capacity). Capacity measured unloaded: ${capacity.toFixed(1)} req/s; ` +
        `offered ${rate.toFixed(1)} req/s (Poisson) for ${durationS} s: ${over.report.requests.total} requests, ` +
        `${over.report.requests.completed} admitted and completed, ${over.report.requests.rejected} rejected, ${over.report.requests.failed} failed.`,
      "",
      table(["metric", "unloaded", "at 5× capacity", "target"], [
        ["admitted TTFT p50 (ms)", b.p50, o?.p50 ?? NaN, "—"],
        ["admitted TTFT p99 (ms)", b.p99, o?.p99 ?? NaN, verdict(ratio <= 2, `(${ratio.toFixed(2)}× unloaded > 2×)`)],
        ["rejection latency p50 (ms)", "—", rej?.p50 ?? NaN, "—"],
        ["rejection latency p99 (ms)", "—", rej?.p99 ?? NaN, verdict((rej?.p99 ?? Infinity) <= 5, "(> 5 ms)")],
        ["coordinator RSS peak (MB)", mb(base.peakRssBytes), mb(over.peakRssBytes), "—"],
      ]),
      "",
      `Rejections by reason: ${over.report.requests.byReason.filter((r) => r.outcome !== "completed").map((r) => `${r.status} ${r.reason} × ${r.count}`).join(", ") || "none"}.`,
      "",
      `Coordinator RSS over the overload run (s → MB): ${rss.filter((_, i) => i % step === 0).map((s) => `${(s.tMs / 1000).toFixed(1)} → ${mb(s.bytes).toFixed(0)}`).join(", ")}.`,
    ].join("\n");
    first = { md, data: { capacity, rate, base: base.report, over: over.report, rss }, rate };
  } finally {
    await fleet.stop();
  }
  const busy = await refusalsUnderRelay(mode, nginxBin, first.rate);
  return { title: "5. Overload at 5× capacity", markdown: `${first.md}\n\n${busyMarkdown(busy)}`, data: { ...first.data, underRelay: busy } };
}

/** Each repetition on its own: a ramp that never opened every stream shows here. */
function perRep(s: RefusalsUnderRelay["coordinator"]): string {
  return s.p50.map((p50, i) => `${fmt(p50)} / ${fmt(s.p99[i]!)} (${s.openAtStart[i]} → ${s.openAtEnd[i]})`).join("; ");
}

function busyMarkdown(b: RefusalsUnderRelay): string {
  const c = b.coordinator;
  const n = b.nginx;
  const p99 = med(c.p99);
  const range = (xs: number[]) => (xs.length === 0 ? "—" : `${Math.min(...xs)}–${Math.max(...xs)}`);
  return [
    `Refusals while ${b.streams.toLocaleString("en-US")} streams relay: 4 sim workers (50 ms between tokens); a background load (a bench process of its own) holds ` +
      `${b.streams.toLocaleString("en-US")} streams open through the relay, which admits exactly that many (the coordinator: ` +
      `SYSTEM_MAX_SESSIONS, no queue; nginx: \`limit_conn\` over its ports, 503 past it); once they are all open, ${b.rate.toFixed(1)} req/s ` +
      `(Poisson, the rate above) for ${b.probeS} s, each to be refused; ${b.reps} alternating repetition(s), medians.`,
    "",
    table(["metric", "coordinator", "nginx (limit_conn)", "target"], [
      ["refusal latency p50 (ms)", med(c.p50), n ? med(n.p50) : "—", "—"],
      ["refusal latency p99 (ms)", p99, n ? med(n.p99) : "—", `≤ 5 ms ${verdict(p99 <= 5, "")}`],
      ["refused / admitted (per repetition, median)", `${med(c.refused)} / ${med(c.admitted)}`, n ? `${med(n.refused)} / ${med(n.admitted)}` : "—", "—"],
      ["streams open at the probe's start → end", `${range(c.openAtStart)} → ${range(c.openAtEnd)}`, n ? `${range(n.openAtStart)} → ${range(n.openAtEnd)}` : "—", "—"],
      ["each repetition: p50 / p99 ms (streams open at start → end)", perRep(c), n ? perRep(n) : "—", "—"],
    ]),
  ].join("\n");
}

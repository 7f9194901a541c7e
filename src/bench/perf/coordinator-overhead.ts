import { startSimFleet } from "./fleet.js";
import { table, verdict } from "./markdown.js";
import { measure, median, type LoadSpec } from "./measure.js";
import { startNginx, type NginxRelay } from "./nginx-relay.js";
import type { SuiteMode, SectionResult } from "./suite-types.js";

/**
 * 1. Coordinator overhead: the same load sent straight to the worker (one `/worker/generate`
 * exchange per request, as the coordinator calls it), through nginx in front of that worker (the
 * client sending the same exchange through it, as section 2's nginx), and through the coordinator (seed API), alternating, on one sim worker. Added TTFT = through −
 * direct (p50 and p99, medians over repetitions); throughput ratio = through / direct.
 * Goals: the coordinator adds ≤ 1 ms at p50 and ≤ 5 ms at p99; ≥ 0.95× tokens/s. nginx's column
 * shows what a plain proxy adds on the same machine.
 */
type Path = "direct" | "nginx" | "coordinator";

interface Series {
  p50: number[];
  p99: number[];
  tps: number[];
}

export async function coordinatorOverhead(mode: SuiteMode, nginxBin: string | undefined): Promise<SectionResult> {
  const simArgs = ["--sim-itl-ms", "10", "--sim-itl-per-sequence-ms", "0", "--sim-prefill-base-ms", "1", "--sim-prefill-per-token-ms", "0", "--parallel", "16"];
  const fleet = await startSimFleet({ workers: 1, simArgs });
  let nginx: NginxRelay | undefined;
  const reps = mode.quick ? 1 : 3;
  const requests = mode.quick ? 16 : 160;
  const rows: Record<Path, Series> = { direct: { p50: [], p99: [], tps: [] }, nginx: { p50: [], p99: [], tps: [] }, coordinator: { p50: [], p99: [], tps: [] } };
  try {
    if (nginxBin !== undefined) nginx = await startNginx(nginxBin, [fleet.workers[0]!.url]);
    const paths: [Path, LoadSpec["target"], string][] = [
      ["direct", "worker-generate", fleet.workers[0]!.url],
      ...(nginx ? [["nginx", "worker-generate", nginx.urls[0]!] as [Path, LoadSpec["target"], string]] : []),
      ["coordinator", "seed", fleet.coordinator.url],
    ];
    const load = (target: LoadSpec["target"], url: string, numRequests: number): LoadSpec => ({
      target, urls: [url], concurrency: 8, numRequests, inputTokens: 32, outputTokens: 64, durationS: 60,
    });
    // One warm-up each, unrecorded: connections, JIT.
    for (const [, target, url] of paths) await measure(load(target, url, 8), () => []);
    for (let i = 0; i < reps; i++) {
      for (const [path, target, url] of paths) {
        const r = (await measure(load(target, url, requests), () => [])).report;
        rows[path].p50.push(r.latencyMs.ttft?.p50 ?? NaN);
        rows[path].p99.push(r.latencyMs.ttft?.p99 ?? NaN);
        rows[path].tps.push(r.throughput.outputTokensPerS);
      }
    }
  } finally {
    await nginx?.stop();
    await fleet.stop();
  }
  const m = (p: Path, k: keyof Series) => (rows[p][k].length > 0 ? median(rows[p][k]) : NaN);
  const addedP50 = m("coordinator", "p50") - m("direct", "p50");
  const addedP99 = m("coordinator", "p99") - m("direct", "p99");
  const ngxP50 = m("nginx", "p50") - m("direct", "p50");
  const ngxP99 = m("nginx", "p99") - m("direct", "p99");
  const ratio = m("coordinator", "tps") / m("direct", "tps");
  const ngxRatio = m("nginx", "tps") / m("direct", "tps");
  const withNginx = nginx !== undefined;
  const dash = (v: number, s: string | number = v) => (withNginx && Number.isFinite(v) ? s : "—");
  const md = [
    `One sim worker (10 ms between tokens, 1 ms prefill, parallel 16), 8 concurrent streams of 64 tokens (32-token prompts), ` +
      `${reps} alternating repetition(s) of ${requests} requests each way; medians. ` +
      (withNginx ? "nginx: 1 worker process, `proxy_buffering off`, keep-alive upstream, the client sending its `/worker/generate` exchange through it." : "nginx was not available: no proxy column."),
    "",
    table(["metric", "direct to worker", "through nginx", "through coordinator", "nginx adds", "coordinator adds", "goal"], [
      ["TTFT p50 (ms)", m("direct", "p50"), dash(m("nginx", "p50")), m("coordinator", "p50"), dash(ngxP50), addedP50, `≤ 1 ms added ${verdict(addedP50 <= 1, "")}`],
      ["TTFT p99 (ms)", m("direct", "p99"), dash(m("nginx", "p99")), m("coordinator", "p99"), dash(ngxP99), addedP99, `≤ 5 ms added ${verdict(addedP99 <= 5, "")}`],
      ["output tokens/s", m("direct", "tps"), dash(m("nginx", "tps")), m("coordinator", "tps"), dash(ngxRatio, `${ngxRatio.toFixed(3)}×`), `${ratio.toFixed(3)}×`, `≥ 0.95× ${verdict(ratio >= 0.95, "")}`],
    ]),
    "",
    "Before its first token the coordinator does its own work (admission, scheduling, the relay's set-up) and",
    "one loopback hop toward the worker (one `/worker/generate` exchange; the seed's two calls for an older worker); nginx adds",
    "its hop on the same exchange and no work of its own, which puts a floor under what any",
    "relay in this position adds on this machine. On this shared 2-core machine each hop may wait for a core",
    "held by another process: compare the two columns of the same run. Throughput is unaffected.",
  ].join("\n");
  return {
    title: "1. Coordinator overhead",
    markdown: md,
    data: { rows, addedP50, addedP99, ratio, nginx: withNginx ? { addedP50: ngxP50, addedP99: ngxP99, ratio: ngxRatio } : null },
  };
}

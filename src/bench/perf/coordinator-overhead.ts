import { startSimFleet } from "./fleet.js";
import { floorSentence, floorVerdict } from "./floor-verdict.js";
import { table, verdict } from "./markdown.js";
import { measure, median, type LoadSpec } from "./measure.js";
import { startNginx, type NginxRelay } from "./nginx-relay.js";
import { startNodeFloor, type NodeFloorRelay } from "./start-node-floor.js";
import type { SuiteMode, SectionResult } from "./suite-types.js";

/**
 * 1. Coordinator overhead: the same load sent straight to the worker (one `/worker/generate`
 * exchange per request, as the coordinator calls it), through nginx in front of that worker (the
 * client sending the same exchange through it, as section 2's nginx), through the Node floor
 * (node-floor-relay.ts: the same exchange piped as bytes by a Node process) and through the
 * coordinator (seed API), alternating, on one sim worker. Added TTFT = through − direct (p50 and
 * p99, medians over repetitions); throughput ratio = through / direct.
 * Goals: the coordinator adds ≤ 1 ms at p50 and ≤ 5 ms at p99; ≥ 0.95× tokens/s. nginx's column
 * shows what a plain proxy adds on the same machine, the floor's what any Node relay adds at least.
 */
type Path = "direct" | "nginx" | "floor" | "coordinator";

interface Series {
  p50: number[];
  p99: number[];
  tps: number[];
}

export async function coordinatorOverhead(mode: SuiteMode, nginxBin: string | undefined): Promise<SectionResult> {
  const simArgs = ["--sim-itl-ms", "10", "--sim-itl-per-sequence-ms", "0", "--sim-prefill-base-ms", "1", "--sim-prefill-per-token-ms", "0", "--parallel", "16"];
  const fleet = await startSimFleet({ workers: 1, simArgs });
  let nginx: NginxRelay | undefined;
  let floor: NodeFloorRelay | undefined;
  const reps = mode.quick ? 1 : 3;
  const requests = mode.quick ? 16 : 160;
  const rows: Record<Path, Series> = { direct: { p50: [], p99: [], tps: [] }, nginx: { p50: [], p99: [], tps: [] }, floor: { p50: [], p99: [], tps: [] }, coordinator: { p50: [], p99: [], tps: [] } };
  try {
    if (nginxBin !== undefined) nginx = await startNginx(nginxBin, [fleet.workers[0]!.url]);
    floor = await startNodeFloor([fleet.workers[0]!.url]);
    const paths: [Path, LoadSpec["target"], string][] = [
      ["direct", "worker-generate", fleet.workers[0]!.url],
      ...(nginx ? [["nginx", "worker-generate", nginx.urls[0]!] as [Path, LoadSpec["target"], string]] : []),
      ["floor", "worker-generate", floor.urls[0]!],
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
    await floor?.stop();
    await fleet.stop();
  }
  const m = (p: Path, k: keyof Series) => (rows[p][k].length > 0 ? median(rows[p][k]) : NaN);
  const addedP50 = m("coordinator", "p50") - m("direct", "p50");
  const addedP99 = m("coordinator", "p99") - m("direct", "p99");
  const ngxP50 = m("nginx", "p50") - m("direct", "p50");
  const ngxP99 = m("nginx", "p99") - m("direct", "p99");
  const ratio = m("coordinator", "tps") / m("direct", "tps");
  const ngxRatio = m("nginx", "tps") / m("direct", "tps");
  const floorP50 = m("floor", "p50") - m("direct", "p50");
  const floorP99 = m("floor", "p99") - m("direct", "p99");
  const floorRatio = m("floor", "tps") / m("direct", "tps");
  const ms = (v: number) => `${v.toFixed(2)} ms added`;
  const x = (v: number) => `${v.toFixed(3)}×`;
  const goals = [
    { goal: "TTFT p50 ≤ 1 ms added", c: addedP50, f: floorP50, ok: (v: number) => v <= 1, show: ms },
    { goal: "TTFT p99 ≤ 5 ms added", c: addedP99, f: floorP99, ok: (v: number) => v <= 5, show: ms },
    { goal: "output tokens/s ≥ 0.95× direct", c: ratio, f: floorRatio, ok: (v: number) => v >= 0.95, show: x },
  ].map((g) => ({ ...g, v: floorVerdict(g.ok(g.c), g.ok(g.f)) }));
  const withNginx = nginx !== undefined;
  const dash = (v: number, s: string | number = v) => (withNginx && Number.isFinite(v) ? s : "—");
  const md = [
    `One sim worker (10 ms between tokens, 1 ms prefill, parallel 16), 8 concurrent streams of 64 tokens (32-token prompts), ` +
      `${reps} alternating repetition(s) of ${requests} requests each way; medians. ` +
      (withNginx ? "nginx: 1 worker process, `proxy_buffering off`, keep-alive upstream, the client sending its `/worker/generate` exchange through it." : "nginx was not available: no proxy column."),
    "",
    table(["metric", "direct to worker", "through nginx", "through Node floor", "through coordinator", "nginx adds", "Node floor adds", "coordinator adds", "goal", "Node floor vs goal"], [
      ["TTFT p50 (ms)", m("direct", "p50"), dash(m("nginx", "p50")), m("floor", "p50"), m("coordinator", "p50"), dash(ngxP50), floorP50, addedP50, `≤ 1 ms added ${verdict(addedP50 <= 1, "")}`, `${verdict(floorP50 <= 1, "")} ${goals[0]!.v}`],
      ["TTFT p99 (ms)", m("direct", "p99"), dash(m("nginx", "p99")), m("floor", "p99"), m("coordinator", "p99"), dash(ngxP99), floorP99, addedP99, `≤ 5 ms added ${verdict(addedP99 <= 5, "")}`, `${verdict(floorP99 <= 5, "")} ${goals[1]!.v}`],
      ["output tokens/s", m("direct", "tps"), dash(m("nginx", "tps")), m("floor", "tps"), m("coordinator", "tps"), dash(ngxRatio, x(ngxRatio)), x(floorRatio), x(ratio), `≥ 0.95× ${verdict(ratio >= 0.95, "")}`, `${verdict(floorRatio >= 0.95, "")} ${goals[2]!.v}`],
    ]),
    "",
    "Before its first token the coordinator does its own work (admission, scheduling, the relay's set-up) and",
    "one loopback hop toward the worker (one `/worker/generate` exchange; the seed's two calls for an older worker); nginx adds",
    "its hop on the same exchange and no work of its own, which puts a floor under what any",
    "relay in this position adds on this machine. On this shared 2-core machine each hop may wait for a core",
    "held by another process: compare the columns of the same run. Throughput is unaffected.",
    "",
    "The Node floor (node-floor-relay.ts) is one Node process that pipes each client connection's bytes to a connection",
    "of its own toward the worker (`net` sockets, `noDelay`, no HTTP parsing): what any Node relay in the coordinator's",
    "place adds at least, before parsing, admission, routing and framing. Against each goal:",
    "",
    ...goals.map((g) => `- ${floorSentence(g.goal, g.show(g.c), g.show(g.f), g.v)}`),
  ].join("\n");
  return {
    title: "1. Coordinator overhead",
    markdown: md,
    data: {
      rows, addedP50, addedP99, ratio,
      nginx: withNginx ? { addedP50: ngxP50, addedP99: ngxP99, ratio: ngxRatio } : null,
      floor: { addedP50: floorP50, addedP99: floorP99, ratio: floorRatio, verdicts: goals.map((g) => ({ goal: g.goal, verdict: g.v })) },
    },
  };
}

import { loadavg } from "node:os";
import { startQuiet } from "./fleet.js";
import { summarize, type Summary } from "../stats.js";
import { Target } from "../targets.js";

/**
 * Time to first token of one request sent straight to a sim worker: one exchange
 * (`POST /worker/generate`) against the seed's two (`/worker/prefill`, then `/worker/decode`).
 * The sim worker answers at once (no prefill cost, no inter-token time), so the difference is the
 * protocol's: one HTTP round trip, one request parse and one route less. Requests are sequential
 * and alternate between the two ways, after a warm-up, over kept-alive loopback connections, sent
 * by the bench tool's client (its TTFT: request sent to first token event).
 *   node dist/src/bench/perf/worker-generate-ttft.js [requests=300] [max_tokens=4]
 * Prints a table (ms) and one JSON line.
 */
const NO_COORDINATOR = "http://127.0.0.1:9";
const WARMUP = 20;
/** Longest any one request may take before the run is abandoned (ms). */
const REQUEST_TIMEOUT_MS = 10_000;

type Mode = "generate" | "prefill+decode";

async function main(argv: string[]): Promise<void> {
  const requests = Math.min(10_000, Math.max(2, Number(argv[0] ?? 300)));
  const maxTokens = Math.max(1, Number(argv[1] ?? 4));
  const worker = await startQuiet(
    ["worker", "--engine", "sim", "--sim-itl-ms", "0", "--sim-itl-per-sequence-ms", "0", "--sim-prefill-base-ms", "0", "--sim-prefill-per-token-ms", "0"],
    "/worker/health",
    { COORDINATOR_URL: NO_COORDINATOR, CACHE_ANNOUNCE_WAIT_MS: "0", PARALLEL: "4" },
  );
  // The bench tool's own client: its `worker` target is the seed's two calls, `worker-generate` the one exchange.
  const targets: Record<Mode, Target> = {
    generate: new Target({ kind: "worker-generate", urls: [worker.url], model: "any", timeoutMs: REQUEST_TIMEOUT_MS }),
    "prefill+decode": new Target({ kind: "worker", urls: [worker.url], model: "any", timeoutMs: REQUEST_TIMEOUT_MS }),
  };
  const load = [loadavg()[0]!];
  const samples: Record<Mode, number[]> = { generate: [], "prefill+decode": [] };
  const never = new AbortController().signal;
  try {
    for (let i = 0; i < WARMUP * 2 + requests; i++) {
      const mode: Mode = i % 2 === 0 ? "generate" : "prefill+decode";
      const r = await targets[mode].send({ index: i, prompt: `bench request ${i}`, messages: [], maxTokens }, 0, never);
      if (r.ttftMs === undefined) throw new Error(`${mode}: no token in the answer (${r.status} ${r.reason})`);
      if (i >= WARMUP * 2) samples[mode].push(r.ttftMs);
    }
  } finally {
    load.push(loadavg()[0]!);
    await Promise.all(Object.values(targets).map((t) => t.close()));
    await worker.stop();
  }
  const rows = (Object.keys(samples) as Mode[]).map((m) => ({ mode: m, ttft_ms: summarize(samples[m])! }));
  const fmt = (x: number) => x.toFixed(3);
  console.log("| path | requests | TTFT p50 (ms) | p90 | p99 | mean |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.mode} | ${r.ttft_ms.count} | ${fmt(r.ttft_ms.p50)} | ${fmt(r.ttft_ms.p90)} | ${fmt(r.ttft_ms.p99)} | ${fmt(r.ttft_ms.mean)} |`);
  console.log(`load average (1 min) before/after: ${load.map((l) => l.toFixed(2)).join(" / ")}`);
  console.log(JSON.stringify({ requests, max_tokens: maxTokens, loadavg_1m: load, rows: rows as { mode: Mode; ttft_ms: Summary }[] }));
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});

import type { BenchReport } from "./report.js";
import type { Summary } from "./stats.js";

/** The report as the plain text table a person reads at the end of a run. */
export function formatReport(r: BenchReport): string {
  const lines: string[] = [];
  const row = (k: string, v: string | number) => lines.push(`${k.padEnd(36)}${typeof v === "number" ? fmt(v) : v}`);
  const title = (t: string) => lines.push(`${"-".repeat(16)} ${t} ${"-".repeat(Math.max(0, 40 - t.length))}`);
  lines.push("=".repeat(20) + " Serving Benchmark Result " + "=".repeat(20));
  row("Requests completed:", r.requests.completed);
  row("Requests failed:", r.requests.failed);
  row("Requests rejected:", r.requests.rejected);
  for (const b of r.requests.byReason) row(`  ${b.outcome} ${b.status || "-"} ${b.reason}:`, b.count);
  row("Duration (s):", r.durationS);
  row("Total input tokens:", r.tokens.prompt);
  row("Total generated tokens:", r.tokens.completion);
  row("Request throughput (req/s):", r.throughput.requestsPerS);
  row("Output token throughput (tok/s):", r.throughput.outputTokensPerS);
  row("Total token throughput (tok/s):", r.throughput.totalTokensPerS);
  if (r.goodput) {
    const slo = Object.entries(r.goodput.slo).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}≤${v}`).join(" ");
    row(`Request goodput (req/s) [${slo}]:`, r.goodput.requestsPerS);
    row("Requests meeting the SLOs (%):", r.goodput.fraction * 100);
  }
  if (r.prefixCache) row("Prefix cache hit ratio (%):", r.prefixCache.hitRatio * 100);
  const latency = (name: string, s: Summary | null) => {
    title(name);
    if (s === null) return row("(no samples)", "");
    row("Mean (ms):", s.mean);
    row("P50 (ms):", s.p50);
    row("P90 (ms):", s.p90);
    row("P99 (ms):", s.p99);
  };
  const mt = r.multiTurn;
  if (mt) {
    title("Multi-turn chat");
    row("Conversations:", mt.conversations);
    row("Turn 1 TTFT P50 / P99 (ms):", mt.firstTurns.ttft ? `${fmt(mt.firstTurns.ttft.p50)} / ${fmt(mt.firstTurns.ttft.p99)}` : "-");
    row("Turn ≥ 2 TTFT P50 / P99 (ms):", mt.laterTurns.ttft ? `${fmt(mt.laterTurns.ttft.p50)} / ${fmt(mt.laterTurns.ttft.p99)}` : "-");
    row("Turn ≥ 2 prefix hit ratio (%):", mt.laterTurns.hitRatio * 100);
    row("Turn ≥ 2 ideal hit ratio (%):", mt.laterTurns.idealHitRatio * 100);
  }
  latency("Time to First Token", r.latencyMs.ttft);
  latency("Time per Output Token (excl. 1st)", r.latencyMs.tpot);
  latency("Inter-token Latency", r.latencyMs.itl);
  latency("End-to-end Latency", r.latencyMs.e2e);
  if (r.latencyMs.rejection) latency("Rejection Latency", r.latencyMs.rejection);
  lines.push("=".repeat(66));
  return lines.join("\n");
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

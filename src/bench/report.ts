import { goodput, hasSlo, tpotOf, type Goodput, type Slo } from "./goodput.js";
import { multiTurnStats, type MultiTurnStats } from "./multi-turn.js";
import type { Outcome, RequestResult } from "./request-result.js";
import { summarize, type Summary } from "./stats.js";

/**
 * The bench report, shaped after `vllm bench serve`'s: counts by outcome and by (status, reason),
 * throughputs over the run's duration, TTFT / TPOT / ITL / E2E latency summaries (ms), goodput
 * under the SLOs given, and the prefix-cache hit ratio over the requests whose server reported
 * cached tokens.
 */
export interface BenchReport {
  config: Record<string, unknown>;
  durationS: number;
  requests: {
    total: number;
    completed: number;
    failed: number;
    rejected: number;
    /** One row per (outcome, status, reason), most frequent first. */
    byReason: { outcome: Outcome; status: number; reason: string; count: number }[];
  };
  tokens: { prompt: number; completion: number };
  throughput: { requestsPerS: number; outputTokensPerS: number; totalTokensPerS: number };
  latencyMs: { ttft: Summary | null; tpot: Summary | null; itl: Summary | null; e2e: Summary | null; rejection: Summary | null };
  goodput: (Goodput & { slo: Slo }) | null;
  prefixCache: { requests: number; cachedTokens: number; promptTokens: number; hitRatio: number } | null;
  /** Multi-turn chat runs: first turns apart from later ones (multi-turn.ts). */
  multiTurn: MultiTurnStats | null;
}

export function buildReport(results: readonly RequestResult[], durationS: number, slo: Slo, config: Record<string, unknown> = {}): BenchReport {
  const counts = { completed: 0, failed: 0, rejected: 0 };
  const reasons = new Map<string, { outcome: Outcome; status: number; reason: string; count: number }>();
  const ttft: number[] = [];
  const tpot: number[] = [];
  const itl: number[] = [];
  const e2e: number[] = [];
  const rejection: number[] = [];
  let prompt = 0;
  let completion = 0;
  let cacheRequests = 0;
  let cached = 0;
  let cachePrompt = 0;
  for (const r of results) {
    counts[r.outcome]++;
    const key = `${r.outcome}|${r.status}|${r.reason}`;
    const row = reasons.get(key) ?? { outcome: r.outcome, status: r.status, reason: r.reason, count: 0 };
    row.count++;
    reasons.set(key, row);
    // Tokens that reached the client count toward throughput, whatever the outcome.
    completion += r.completionTokens;
    if (r.outcome === "rejected") rejection.push(r.e2eMs);
    if (r.outcome !== "completed") continue;
    prompt += r.promptTokens ?? 0;
    if (r.ttftMs !== undefined) ttft.push(r.ttftMs);
    const t = tpotOf(r);
    if (t !== undefined) tpot.push(t);
    for (const g of r.itlMs) itl.push(g);
    e2e.push(r.e2eMs);
    if (r.cachedTokens !== undefined && r.promptTokens !== undefined) {
      cacheRequests++;
      cached += r.cachedTokens;
      cachePrompt += r.promptTokens;
    }
  }
  return {
    config,
    durationS,
    requests: {
      total: results.length,
      ...counts,
      byReason: [...reasons.values()].sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
    },
    tokens: { prompt, completion },
    throughput: {
      requestsPerS: counts.completed / durationS,
      outputTokensPerS: completion / durationS,
      totalTokensPerS: (prompt + completion) / durationS,
    },
    latencyMs: { ttft: summarize(ttft), tpot: summarize(tpot), itl: summarize(itl), e2e: summarize(e2e), rejection: summarize(rejection) },
    goodput: hasSlo(slo) ? { slo, ...goodput(results, slo, durationS) } : null,
    prefixCache: cacheRequests > 0 ? { requests: cacheRequests, cachedTokens: cached, promptTokens: cachePrompt, hitRatio: cachePrompt > 0 ? cached / cachePrompt : 0 } : null,
    multiTurn: multiTurnStats(results),
  };
}

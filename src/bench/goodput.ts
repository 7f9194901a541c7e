import type { RequestResult } from "./request-result.js";

/**
 * Goodput as `vllm bench serve` defines it: completed requests per second that met every SLO given
 * (a bound that is not given does not apply). TPOT of a request = (E2E − TTFT) / (tokens − 1).
 */
export interface Slo {
  ttftMs?: number;
  tpotMs?: number;
  e2eMs?: number;
}

export function tpotOf(r: RequestResult): number | undefined {
  if (r.ttftMs === undefined || r.completionTokens < 2) return undefined;
  return (r.e2eMs - r.ttftMs) / (r.completionTokens - 1);
}

export function meetsSlo(r: RequestResult, slo: Slo): boolean {
  if (r.outcome !== "completed") return false;
  if (slo.ttftMs !== undefined && (r.ttftMs === undefined || r.ttftMs > slo.ttftMs)) return false;
  if (slo.e2eMs !== undefined && r.e2eMs > slo.e2eMs) return false;
  if (slo.tpotMs !== undefined) {
    const tpot = tpotOf(r);
    if (tpot !== undefined && tpot > slo.tpotMs) return false;
  }
  return true;
}

export interface Goodput {
  goodRequests: number;
  /** Good requests per second of the run. */
  requestsPerS: number;
  /** Good requests / completed requests. */
  fraction: number;
}

export function goodput(results: readonly RequestResult[], slo: Slo, durationS: number): Goodput {
  let good = 0;
  let completed = 0;
  for (const r of results) {
    if (r.outcome === "completed") completed++;
    if (meetsSlo(r, slo)) good++;
  }
  return { goodRequests: good, requestsPerS: durationS > 0 ? good / durationS : 0, fraction: completed > 0 ? good / completed : 0 };
}

export function hasSlo(slo: Slo): boolean {
  return slo.ttftMs !== undefined || slo.tpotMs !== undefined || slo.e2eMs !== undefined;
}

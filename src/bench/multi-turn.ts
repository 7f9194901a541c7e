import type { RequestResult } from "./request-result.js";
import { summarize, type Summary } from "./stats.js";

/**
 * Per-turn statistics of a multi-turn chat run (requests with a session id): the first turn of
 * each conversation apart from the later ones, whose prompt extends the previous turn's. A turn's
 * number is its rank by start time within its conversation (turns of one conversation never
 * overlap).
 *
 * The ideal prefix-cache hit of a later turn is what keeping the previous turn's KV exactly would
 * reuse: its prompt and its answer, less the answer's last token (sampled, never evaluated), and at
 * most the new prompt less one (prefill always evaluates the last prompt token). Hit ratios are
 * cached prompt tokens over prompt tokens, over the completed requests that report both.
 */
export interface TurnGroup {
  requests: number;
  ttft: Summary | null;
  cachedTokens: number;
  promptTokens: number;
  hitRatio: number;
}

export interface MultiTurnStats {
  conversations: number;
  firstTurns: TurnGroup;
  laterTurns: TurnGroup & { idealCachedTokens: number; idealHitRatio: number };
}

export function multiTurnStats(results: readonly RequestResult[]): MultiTurnStats | null {
  const bySession = new Map<string, RequestResult[]>();
  for (const r of results) {
    if (r.sessionId === undefined) continue;
    let list = bySession.get(r.sessionId);
    if (list === undefined) bySession.set(r.sessionId, (list = []));
    list.push(r);
  }
  if (bySession.size === 0) return null;
  const first = group();
  const later = { ...group(), idealCachedTokens: 0, idealHitRatio: 0 };
  const firstTtft: number[] = [];
  const laterTtft: number[] = [];
  for (const turns of bySession.values()) {
    turns.sort((a, b) => a.startMs - b.startMs || a.index - b.index);
    turns.forEach((r, i) => {
      if (r.outcome !== "completed") return;
      const g = i === 0 ? first : later;
      g.requests++;
      if (r.ttftMs !== undefined) (i === 0 ? firstTtft : laterTtft).push(r.ttftMs);
      if (r.promptTokens === undefined || r.cachedTokens === undefined) return;
      g.promptTokens += r.promptTokens;
      g.cachedTokens += r.cachedTokens;
      if (i === 0) return;
      const prev = turns[i - 1]!;
      const kept = prev.promptTokens === undefined ? 0 : prev.promptTokens + Math.max(0, prev.completionTokens - 1);
      later.idealCachedTokens += Math.max(0, Math.min(kept, r.promptTokens - 1));
    });
  }
  first.ttft = summarize(firstTtft);
  later.ttft = summarize(laterTtft);
  first.hitRatio = ratio(first.cachedTokens, first.promptTokens);
  later.hitRatio = ratio(later.cachedTokens, later.promptTokens);
  later.idealHitRatio = ratio(later.idealCachedTokens, later.promptTokens);
  return { conversations: bySession.size, firstTurns: first, laterTurns: later };
}

function group(): TurnGroup {
  return { requests: 0, ttft: null, cachedTokens: 0, promptTokens: 0, hitRatio: 0 };
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

import type { Logger } from "../../common/logger.js";
import type { PrefixMatch } from "../fleet/prefix-index.js";
import type { Decision } from "../scheduler/types.js";

/**
 * The last routing decisions, newest last, for operators and the dashboard ("why this worker?"):
 * a fixed ring of ROUTE_LOG_SIZE plain records, written once per request after its prefill.
 */
export const ROUTE_LOG_SIZE = 64;

export interface RouteRecord {
  /** Wall-clock ms since the epoch. */
  at: number;
  request_id: string;
  worker_id: string;
  profile: string;
  score: number;
  scores: Readonly<Record<string, number>>;
  runner_up: { worker_id: string; score: number } | null;
  home: string | null;
  saturated: readonly string[];
  prefix_blocks: number;
  prefix_matched: number;
  queued_ms: number;
  attempts: number;
  /** What the worker then reported: prompt tokens served from its cache, of all prompt tokens. */
  cached_tokens: number;
  prompt_tokens: number;
}

export class RouteLog {
  private readonly ring: RouteRecord[] = [];
  private next = 0;

  record(
    at: number, requestId: string, d: Extract<Decision, { ok: true }>, prefix: PrefixMatch, queuedMs: number, attempts: number,
    cachedTokens: number, promptTokens: number,
  ): void {
    const r: RouteRecord = {
      at, request_id: requestId, worker_id: d.pick.candidate.id, profile: d.profile, score: round(d.pick.total), scores: d.pick.scores,
      runner_up: d.runnerUp ? { worker_id: d.runnerUp.candidate.id, score: round(d.runnerUp.total) } : null,
      home: d.home ?? null, saturated: d.saturated, prefix_blocks: prefix.blocks, prefix_matched: prefix.matched.get(d.pick.candidate.id) ?? 0,
      queued_ms: Math.round(queuedMs), attempts, cached_tokens: cachedTokens, prompt_tokens: promptTokens,
    };
    if (this.ring.length < ROUTE_LOG_SIZE) this.ring.push(r);
    else this.ring[this.next] = r;
    this.next = (this.next + 1) % ROUTE_LOG_SIZE;
  }

  /** Oldest first. */
  recent(): RouteRecord[] {
    return this.ring.length < ROUTE_LOG_SIZE ? [...this.ring] : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;

/** Why this worker: the pick at info (`scheduler.select`), every candidate's breakdown at debug. */
export function logDecision(log: Logger, d: Extract<Decision, { ok: true }>, prefix: PrefixMatch, extra: Record<string, unknown>): void {
  // Below the level (the benchmarks run at warn) nothing of the line is built.
  if (!log.isLevelEnabled("info")) return;
  log.info(
    {
      profile: d.profile, score: round(d.pick.total), scores: d.pick.scores,
      runner_up: d.runnerUp ? { worker_id: d.runnerUp.candidate.id, score: round(d.runnerUp.total) } : null,
      ...(d.home !== undefined ? { home: d.home } : {}),
      ...(d.saturated.length > 0 ? { saturated: d.saturated } : {}),
      prefix_blocks: prefix.blocks, prefix_matched: prefix.matched.get(d.pick.candidate.id) ?? 0,
      ...extra,
    },
    "scheduler.select",
  );
  if (log.isLevelEnabled("debug")) {
    log.debug(
      {
        profile: d.profile, considered: d.considered, dropped: d.dropped,
        candidates: d.ranked.map((s) => ({ worker_id: s.candidate.id, score: round(s.total), scores: s.scores })),
      },
      "scheduler.decision",
    );
  }
}

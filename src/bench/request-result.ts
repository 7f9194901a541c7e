/**
 * What the load generator records of one request. Times are milliseconds: `startMs` from the start
 * of the run, the others from the request's own start.
 */
export type Outcome = "completed" | "failed" | "rejected";

export interface RequestResult {
  index: number;
  startMs: number;
  outcome: Outcome;
  /** HTTP status of the answer; 0 when none came (connection refused, aborted). */
  status: number;
  /** "ok", or the server's error code (`system_sessions_full`, `worker_failed`…), or a client-side cause. */
  reason: string;
  /** Time to the first token; undefined when none arrived. */
  ttftMs: number | undefined;
  /** Time to the end of the answer (or to the failure). */
  e2eMs: number;
  /** Gaps between consecutive token events (ms). */
  itlMs: number[];
  promptTokens: number | undefined;
  completionTokens: number;
  /** Prompt tokens the server reports as served from its prefix cache; undefined when it reports none. */
  cachedTokens: number | undefined;
  /** The generated text (multi-turn chat feeds it back as history). */
  text: string;
  /** The conversation this request belongs to (multi-turn chat). */
  sessionId?: string;
}

/** 429 and 503 are the server refusing load (admission, capacity): rejected, not failed. */
export function outcomeOfStatus(status: number): Outcome {
  return status === 429 || status === 503 ? "rejected" : "failed";
}

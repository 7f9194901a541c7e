/**
 * The scheduler's vocabulary (STYLE rules 1 and 2). A profile is data: filters that keep or drop a
 * candidate, weighted scorers in [0,1] (higher is better) and a picker. Scheduling is pure: it reads
 * a snapshot of candidates, and time and randomness arrive as arguments.
 */
import type { Rng } from "../../common/rng.js";

export interface Candidate {
  readonly id: string;
  readonly url: string;
  readonly model: string;
  readonly fresh: boolean;
  readonly healthy: boolean;
  readonly draining: boolean;
  /** Sessions on the worker: the larger of its last report and what this coordinator dispatched. */
  readonly sessions: number;
  readonly maxSessions: number;
  /** KV bytes reserved on the worker, likewise. */
  readonly kvBytes: number;
  readonly maxKvBytes: number;
  readonly maxSessionKvBytes: number;
  readonly kvBytesPerToken: number;
  readonly contextSize: number;
  /** Sessions waiting there for an engine slot (last report). */
  readonly waiting: number;
  readonly slotsTotal: number;
}

export interface RouteRequest {
  /** Canonical model id, or undefined for any. */
  readonly model: string | undefined;
  /** Estimated prompt tokens + max_tokens. */
  readonly tokens: number;
  /** Workers already tried for this request (retries go elsewhere). */
  readonly exclude: ReadonlySet<string>;
  /** The worker holding the request's conversation, when it belongs to one. */
  readonly affinity?: string | undefined;
}

export interface ScheduleContext {
  readonly nowMs: number;
  readonly rng: Rng;
}

export interface Filter {
  readonly name: string;
  keep(c: Candidate, r: RouteRequest): boolean;
}

export interface Scorer {
  readonly name: string;
  /** In [0,1]; higher is better. */
  score(c: Candidate, r: RouteRequest): number;
}

export interface WeightedScorer {
  readonly scorer: Scorer;
  readonly weight: number;
}

export interface ScoredCandidate {
  readonly candidate: Candidate;
  readonly total: number;
  readonly scores: Readonly<Record<string, number>>;
}

export interface Picker {
  readonly name: string;
  pick(scored: readonly ScoredCandidate[], r: RouteRequest, ctx: ScheduleContext): ScoredCandidate;
}

export interface Profile {
  readonly name: string;
  readonly filters: readonly Filter[];
  readonly scorers: readonly WeightedScorer[];
  readonly picker: Picker;
}

export type Decision =
  | {
      readonly ok: true;
      readonly profile: string;
      readonly pick: ScoredCandidate;
      readonly runnerUp: ScoredCandidate | undefined;
      readonly considered: number;
      readonly dropped: Readonly<Record<string, number>>;
    }
  | { readonly ok: false; readonly profile: string; readonly considered: number; readonly dropped: Readonly<Record<string, number>> };

/**
 * The scheduler's vocabulary (STYLE rules 1 and 2). A profile is data: filters that keep or drop a
 * candidate, weighted scorers in [0,1] (higher is better) and a picker. Scheduling is pure: it reads
 * a snapshot of candidates, and time and randomness arrive as arguments.
 */
import type { Rng } from "../../common/rng.js";
import type { PrefixMatch } from "../fleet/prefix-index.js";

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
  /** What a KV tier hit is worth against a slot hit on this worker (its measured 1 − restore/prefill); absent: no tiers. */
  readonly kvTierWeight?: { readonly host: number; readonly disk: number } | undefined;
}

export interface RouteRequest {
  /** Canonical model id, or undefined for any. */
  readonly model: string | undefined;
  /** Estimated prompt tokens + max_tokens. */
  readonly tokens: number;
  /** Workers already tried for this request (retries go elsewhere). */
  readonly exclude: ReadonlySet<string>;
  /**
   * The worker the request should stick to, when known. When absent and `affinityKey` is set,
   * `schedule` fills it with the key's rendezvous home among the candidates the filters kept.
   */
  readonly affinity?: string | undefined;
  /** The request's conversation (`x-session-id`): the key of rendezvous affinity. */
  readonly affinityKey?: string | undefined;
  /** How much of the request's prompt each worker holds in its prefix cache. */
  readonly prefix?: PrefixMatch | undefined;
}

export interface ScheduleContext {
  readonly nowMs: number;
  readonly rng: Rng;
  /** A counter of scheduled requests (the round-robin picker's cursor); 0 when absent. */
  readonly sequence?: number;
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

/**
 * The guard against sending work to a worker only because it holds a cache: a candidate whose load
 * (scheduler/load.ts) is at or above `threshold` gets 0 from the `gated` scorers, so the load
 * scorers decide, unless every candidate is that loaded (then the cache still breaks the tie).
 */
export interface SaturationGuard {
  readonly threshold: number;
  readonly gated: readonly string[];
}

export interface Profile {
  readonly name: string;
  readonly filters: readonly Filter[];
  readonly scorers: readonly WeightedScorer[];
  readonly picker: Picker;
  readonly saturation?: SaturationGuard;
}

export type Decision =
  | {
      readonly ok: true;
      readonly profile: string;
      readonly pick: ScoredCandidate;
      readonly runnerUp: ScoredCandidate | undefined;
      readonly considered: number;
      readonly dropped: Readonly<Record<string, number>>;
      /** Every candidate the filters kept, best first. */
      readonly ranked: readonly ScoredCandidate[];
      /** Kept candidates whose cache scores the saturation guard zeroed. */
      readonly saturated: readonly string[];
      /** The rendezvous home of the request's conversation, when it has one. */
      readonly home: string | undefined;
    }
  | { readonly ok: false; readonly profile: string; readonly considered: number; readonly dropped: Readonly<Record<string, number>> };

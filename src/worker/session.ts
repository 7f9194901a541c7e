import type { SamplingParams } from "../protocol/sampling.js";
import type { SlotLease } from "./slot-pool.js";

/**
 * One client conversation on this worker: its KV reservation, its slot (engine sequence) and its
 * state. Created by prefill, driven by decode, ended exactly once by `SessionTable.end`.
 */
export type SessionState = "prefilling" | "ready" | "decoding" | "ended";

export class Session {
  state: SessionState = "prefilling";
  slot: SlotLease | undefined;
  /** Tokens whose KV the session holds (prompt, then each generated token). */
  heldTokens = 0;
  generated = 0;
  cachedTokens = 0;
  /** Monotonic ms of the last prefill or decode activity, for the idle TTL. */
  lastActiveMs: number;
  /** Monotonic ms the prefill request arrived (latency metrics). */
  readonly createdMs: number;
  /** Aborts whatever the session is doing (prefill, slot wait, decode). */
  readonly abort = new AbortController();

  constructor(
    readonly id: string,
    readonly requestId: string,
    readonly promptTokens: number,
    readonly maxTokens: number,
    readonly sampling: SamplingParams,
    /** KV bytes promised to this session: (prompt + max_tokens) × bytes per token. */
    readonly reservedKvBytes: number,
    nowMs: number,
  ) {
    this.lastActiveMs = nowMs;
    this.createdMs = nowMs;
  }
}

/**
 * Faults the simulated engine injects on request, for chaos and failover tests. Each is off by
 * default and set by its own flag (config.ts, SIM_*):
 *   - failPrefillProbability p: a prefill fails (HTTP 500 from the worker) with probability p;
 *   - crashAfterTokens N > 0: the process dies (SIGKILL) once it has generated N tokens in total;
 *   - hang: "prefill" (prefills never answer), "decode" (streams open, no token ever comes),
 *     "process" (the whole process freezes, SIGSTOP, at its first prefill: no answers, no heartbeats);
 *   - stallAfterTokens K ≥ 0: a stream stops after K tokens for stallMs (0: until cancelled), chosen
 *     per stream with probability stallProbability;
 *   - crashOnPrompt M: the process dies (SIGKILL) on a prompt whose text contains M (a poison
 *     request): while tokenizing it (crashOnPromptAfterTokens -1), or after that many tokens of its
 *     stream (text prompts only: the stream is known by the tokens its prefill got);
 * and "answer slowly" is SimTiming.slowFactor. Random choices come from the engine's seeded Rng.
 */
import type { SIM_HANG_MODES } from "../common/config.js";

export type SimHang = (typeof SIM_HANG_MODES)[number];

export interface SimFaults {
  failPrefillProbability: number;
  /** 0: never. */
  crashAfterTokens: number;
  hang: SimHang;
  /** -1: never. */
  stallAfterTokens: number;
  /** 0: until the stream is cancelled. */
  stallMs: number;
  stallProbability: number;
  /** undefined: off. */
  crashOnPrompt: string | undefined;
  /** -1: while tokenizing. */
  crashOnPromptAfterTokens: number;
}

export const NO_FAULTS: SimFaults = {
  failPrefillProbability: 0, crashAfterTokens: 0, hang: "none", stallAfterTokens: -1, stallMs: 0, stallProbability: 1,
  crashOnPrompt: undefined, crashOnPromptAfterTokens: -1,
};

/** What the process does when a fault takes it down; the worker wires these to real signals. */
export interface SimProcessHooks {
  crash(): void;
  freeze(): void;
}

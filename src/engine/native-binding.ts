import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { BuiltCpuBackend } from "./cpu-variant.js";
import type { TokenLogprobs } from "./engine.js";

/**
 * The native engine addon (native/*.cpp, built by scripts/build-native.mjs at install time) and
 * the JavaScript shape of what it exports. Loading fails softly: the caller gets the reason and
 * falls back to the node-llama-cpp engine.
 */
export interface NativeEngineInit {
  modelPath: string;
  parallel: number;
  /** Tokens per sequence. */
  ctxPerSeq: number;
  /** Tokens per decode call. */
  batch: number;
  threads: number;
  threadsBatch: number;
  /** CPU thread pool polling level, 0 (sleep at once) to 100 (spin long). */
  poll: number;
}

/** Sampling as the native sampler takes it; absent fields take its defaults. */
export interface NativeSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed?: number;
  penaltyLastN: number;
  repeatPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  biasTokens?: Int32Array;
  /** ≤ -100 bans the token. */
  biasValues?: Float32Array;
  grammar?: string;
  /** Logprobs of each chosen token and of this many likeliest (0..20); absent: none. */
  topLogprobs?: number;
}

export interface NativeModelInfo {
  trainContextSize: number;
  contextSize: number;
  vocabSize: number;
  bos: number;
  eos: number;
  addBos: boolean;
  threads: number;
  threadsBatch: number;
}

/**
 * Events come 5 integers each: sequence, kind, token, a, b; `texts` holds one string per token
 * event, and `logprobs` (only when some generation asked for them) one entry or undefined per token event.
 */
export type NativeEventsHandler = (ints: Int32Array, texts: string[], logprobs?: (TokenLogprobs | undefined)[]) => void;

export interface NativeEngineHandle {
  info(): NativeModelInfo;
  tokenize(text: string, addSpecial: boolean): Int32Array;
  /** undefined when the GBNF grammar parses, else why not. */
  checkGrammar(gbnf: string): string | undefined;
  /** Evaluates the whole prompt (reusing the common prefix held) and keeps its last logits. */
  prefill(seq: number, tokens: Int32Array): void;
  /**
   * Samples the first token at once from the prefill's logits and returns it; the decode loop goes
   * on unless it is an end token or `maxTokens` is 1. Throws when the sampler cannot be built (a
   * grammar that does not parse) or the sequence was not just prefilled.
   */
  generate(seq: number, sampling: NativeSampling, maxTokens: number, credit: number): { token: number; text: string; end: boolean; logprobs?: TokenLogprobs };
  grant(seq: number, tokens: number): void;
  cancel(seq: number): void;
  clear(seq: number): void;
  /**
   * The idle sequence's llama.cpp state and the tokens it holds; undefined when busy or empty (or
   * the engine closed first). Queued: the decode loop runs it between two steps.
   */
  saveState(seq: number): Promise<{ bytes: Uint8Array; tokens: Int32Array } | undefined>;
  /**
   * Loads a state saved by saveState, queued like saveState: 1 done, 0 does not fit (the sequence
   * is emptied), -1 busy or undefined the engine closed first (untouched). Throws `invalid_token`.
   */
  restoreState(seq: number, bytes: Uint8Array, tokens: Int32Array): Promise<number | undefined>;
  close(): void;
}

export interface NativeBinding {
  NativeEngine: new (init: NativeEngineInit, onEvents: NativeEventsHandler) => NativeEngineHandle;
  /** Loads llama.cpp's CPU backend from `dir` (the first of `preferred` this CPU runs, else ggml's pick). */
  loadBackend(dir: string, preferred?: readonly string[]): boolean;
}

export const enum EventKind { Token = 0, Done = 1, Prefilled = 2, Cleared = 3 }
export const enum DoneReason { Stop = 0, Length = 1, Cancelled = 2, Error = 3, DeadEnd = 4 }
export const enum PrefillStatus { Ok = 0, Cancelled = 1, Failed = 2 }

export type NativeBindingResult =
  | { ok: true; binding: NativeBinding; backendDir: string; cpuBackend: BuiltCpuBackend | undefined; release: string }
  | { ok: false; reason: string };

const BUILD_DIR = resolve(fileURLToPath(new URL("../../../native/build/", import.meta.url)));
const ADDON = join(BUILD_DIR, "inference-engine-native.node");

let cached: NativeBindingResult | undefined;

/** Loads the addon once per process (llama.cpp's CPU backend is loaded by the first engine). */
export function loadNativeBinding(): NativeBindingResult {
  cached ??= load();
  return cached;
}

function load(): NativeBindingResult {
  let stamp: { bins?: string; release?: string; cpuBackend?: { file?: string; cpuFlags?: string[] } };
  try {
    stamp = JSON.parse(readFileSync(join(BUILD_DIR, "stamp.json"), "utf8")) as typeof stamp;
  } catch {
    return { ok: false, reason: `the native engine is not built (${ADDON}); run \`node scripts/build-native.mjs\`` };
  }
  if (stamp.bins === undefined) return { ok: false, reason: "the native engine's build stamp names no llama.cpp libraries" };
  try {
    const addon = createRequire(import.meta.url)(ADDON) as NativeBinding;
    const built = stamp.cpuBackend;
    const cpuBackend = built?.file !== undefined && Array.isArray(built.cpuFlags) && existsSync(join(BUILD_DIR, built.file))
      ? { path: join(BUILD_DIR, built.file), cpuFlags: built.cpuFlags }
      : undefined;
    return { ok: true, binding: addon, backendDir: resolve(BUILD_DIR, stamp.bins), cpuBackend, release: stamp.release ?? "unknown" };
  } catch (err) {
    return { ok: false, reason: `the native engine could not be loaded: ${(err as Error).message}` };
  }
}

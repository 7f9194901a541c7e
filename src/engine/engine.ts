import type { ChatMessage } from "../protocol/chat.js";
import type { ToolChatMessage } from "../protocol/tools/worker-tools.js";
import type { TemplateTool } from "./chat-template.js";
import type { ToolCallSyntax } from "./tool-call-syntax.js";
import type { SamplingParams } from "../protocol/sampling.js";

/**
 * What a worker needs from an inference engine. The llama.cpp engine and the simulated engine both
 * implement it, so everything above (sessions, decode pump, HTTP) runs unchanged on either.
 *
 * An engine owns `parallel` sequences; each holds one session's KV cache. Sequences decode together
 * (continuous batching): a sequence whose consumer stops pulling simply sits out the next steps.
 */
export interface EngineInfo {
  readonly engine: string;
  readonly modelId: string;
  readonly modelPath: string | undefined;
  /** Tokens one sequence can hold. */
  readonly contextSize: number;
  /** KV cache bytes one held token costs (K and V, all layers). */
  readonly kvBytesPerToken: number;
  readonly parallel: number;
  readonly threads: number;
  /** The native engine's llama.cpp CPU kernels: built for this CPU, or node-llama-cpp's prebuilt ones. */
  readonly cpuBackend?: "native" | "prebuilt";
  readonly trainContextSize: number;
  readonly vocabSize: number;
  /**
   * Who may load this engine's sequence states (KV tiers, KV moving between workers): the model
   * file's identity, the engine build, the context per sequence and the KV layout, as one string.
   * Absent: the engine cannot save or restore a sequence (the node-llama-cpp engine), tiers are off.
   */
  readonly kvStateIdentity?: string;
}

/** One sequence's KV as llama.cpp's per-sequence state API gives it, with the tokens it holds. */
export interface SequenceState {
  readonly bytes: Uint8Array;
  readonly tokens: readonly number[];
}

export interface GeneratedToken {
  readonly id: number;
  /** Text this token completes; empty while a multi-byte character is still incomplete. */
  readonly text: string;
  /** When the sampling asked for logprobs (`top_logprobs`). */
  readonly logprobs?: TokenLogprobs;
}

/** A token's log-probability (natural log) with its bytes (the token's own, not the text it completes). */
export interface LogprobEntry {
  readonly id: number;
  readonly logprob: number;
  readonly bytes: Uint8Array;
}

/**
 * The chosen token's entry and the `top_logprobs` likeliest, most likely first, from the
 * distribution after the logit bias, grammar and penalties, before truncation and temperature.
 */
export interface TokenLogprobs extends LogprobEntry {
  readonly top: readonly LogprobEntry[];
}

export interface GenerateOptions {
  readonly sampling: SamplingParams;
  readonly maxTokens: number;
  readonly signal: AbortSignal;
}

export interface PrefillResult {
  /** Prompt tokens evaluated now. */
  readonly evaluated: number;
  /** Prompt tokens whose KV the sequence already held (prefix reuse). */
  readonly reused: number;
}

export interface EngineSequence {
  readonly index: number;
  /** Token ids whose KV the sequence holds, in order. */
  heldTokens(): readonly number[];
  /**
   * Makes the sequence hold `tokens` but the last (evaluated by the first generate step), reusing
   * the longest common prefix already held.
   */
  prefill(tokens: readonly number[], signal: AbortSignal): Promise<PrefillResult>;
  /**
   * Generates after the prefilled prompt until end of generation, `maxTokens`, or abort. The
   * consumer's pace is the sequence's pace: nothing is computed for it until it asks for more.
   */
  generate(opts: GenerateOptions): AsyncIterable<GeneratedToken>;
  /** Drops the KV cache. */
  clear(): Promise<void>;
  /**
   * The KV state of the idle sequence (engines with `info.kvStateIdentity`); undefined when it is
   * busy or holds nothing. The engine takes it between two decode steps (at most one step's wait).
   */
  saveState?(): Promise<SequenceState | undefined>;
  /**
   * Makes the idle sequence hold `state` (the next prefill reuses it as a prefix); false when the
   * state does not fit this context (it then holds nothing: heldTokens() is a new empty list) or
   * the sequence is busy (what it holds is unchanged). Done between two decode steps.
   */
  restoreState?(state: SequenceState): Promise<boolean>;
}

/** A chat rendered for the model: its prompt tokens and how the assistant's turn ends. */
export interface RenderedChat {
  /** Prompt tokens, with the BOS token where the template puts one. */
  readonly tokens: number[];
  /** Texts that end the assistant's turn (the worker stops there and never emits them). */
  readonly stops: readonly string[];
  /** Tokens that end the assistant's turn besides the model's end-of-generation tokens. */
  readonly stopTokens: readonly number[];
  /** Name of the template used, for logs. */
  readonly template: string;
}

export interface Engine {
  readonly info: EngineInfo;
  readonly sequences: readonly EngineSequence[];
  /** Prompt text to token ids, with the BOS token where the model wants one. */
  tokenize(text: string): number[];
  /**
   * Chat messages to prompt tokens with the model's own chat template (see chat-template.ts). An
   * engine without one gets the worker's plain fallback.
   */
  renderChat?(messages: readonly ChatMessage[]): RenderedChat;
  /**
   * A chat with tools in the model's own format (chat-template.ts `renderWithTools`): the rendered
   * prompt and the template's tool-call syntax; undefined when the template defines none.
   */
  renderToolChat?(messages: readonly ToolChatMessage[], tools: readonly TemplateTool[]): { rendered: RenderedChat; syntax: ToolCallSyntax } | undefined;
  /** Rejects sampling the engine cannot honour (e.g. a grammar that does not compile) before any work. */
  validateSampling?(sampling: SamplingParams): Promise<void>;
  close(): Promise<void>;
}

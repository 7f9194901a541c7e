import type { PromptInput } from "../protocol/prefix-blocks.js";
import type { SamplingParams } from "../protocol/sampling.js";
import type { SlotLease } from "./slot-pool.js";

/**
 * One client conversation on this worker: its KV reservation, its slot (engine sequence) and its
 * state. Created by prefill, driven by decode, ended exactly once by `SessionTable.end`.
 */
export type SessionState = "prefilling" | "ready" | "decoding" | "ended";

/** What a session adds to its sampling: how its output ends and whether its KV outlives it. */
export interface SessionExtras {
  /** The client's conversation: a completed turn keeps its KV for the next (kept-sequences.ts). */
  conversationId?: string;
  /** Texts that end generation and are never emitted: the request's `stop` and the chat template's. */
  stops?: readonly string[];
  /** Tokens that end generation besides the model's end tokens (a chat template's end of turn). */
  stopTokens?: ReadonlySet<number>;
  /** The chat template that rendered the prompt (for logs). */
  template?: string;
  /** The prompt as the client sent it: names the KV the session leaves behind (prefix-blocks.ts). */
  input?: PromptInput;
}

const NO_TOKENS: ReadonlySet<number> = new Set();

export class Session {
  state: SessionState = "prefilling";
  slot: SlotLease | undefined;
  /** Tokens whose KV the session holds (prompt, then each generated token). */
  heldTokens = 0;
  generated = 0;
  cachedTokens = 0;
  /** The KV tier this turn's conversation was restored from (its tokens count in cachedTokens). */
  restored: { tier: "host" | "disk"; tokens: number; ms: number } | undefined;
  /** The text sent to the client so far (the prefix cache's key for what was generated). */
  outputText = "";
  /** Monotonic ms of the last prefill or decode activity, for the idle TTL. */
  lastActiveMs: number;
  /** Monotonic ms the prefill request arrived (latency metrics). */
  readonly createdMs: number;
  /** Aborts whatever the session is doing (prefill, slot wait, decode). */
  readonly abort = new AbortController();
  readonly conversationId: string | undefined;
  readonly stops: readonly string[];
  readonly stopTokens: ReadonlySet<number>;
  readonly input: PromptInput | undefined;

  constructor(
    readonly id: string,
    readonly requestId: string,
    readonly promptTokens: number,
    readonly maxTokens: number,
    readonly sampling: SamplingParams,
    /** KV bytes promised to this session: (prompt + max_tokens) × bytes per token. */
    readonly reservedKvBytes: number,
    nowMs: number,
    extras: SessionExtras = {},
  ) {
    this.lastActiveMs = nowMs;
    this.createdMs = nowMs;
    this.conversationId = extras.conversationId;
    this.stops = extras.stops ?? sampling.stop ?? [];
    this.stopTokens = extras.stopTokens ?? NO_TOKENS;
    this.input = extras.input;
  }
}

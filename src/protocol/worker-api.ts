import { ServingError } from "./serving-error.js";
import { readChatMessages, type ChatMessage } from "./chat.js";
import type { CacheNotice } from "./cache-notice.js";
import { MAX_PROMPT_CHARS, MAX_TOKENS_CEILING } from "./limits.js";
import { readJsonSchemaOrText, readSampling, type SamplingParams } from "./sampling.js";
import type { LogprobContent } from "./token-logprobs.js";
import type { NativeCallSyntax } from "./tools/native-tool-calls.js";
import { readWorkerTools, type WorkerTools } from "./tools/worker-tools.js";
import { optionalInteger, requireSessionId, optionalString, type JsonObject } from "./validate.js";

/**
 * The worker's HTTP contract (seed: /worker/prefill, /worker/decode, /worker/health), plus added
 * fields and routes (/worker/generate: a PrefillRequest answered by a GenerateAckEvent, then decode events).
 */

// Re-exported for callers that read them with the worker API; they live in limits.ts.
export { MAX_PROMPT_CHARS, MAX_TOKENS_CEILING };

export interface PrefillRequest {
  session_id: string;
  /** The prompt as text (the seed's field); exactly one of `prompt` and `messages` is given. */
  prompt?: string;
  /** Added: chat messages, rendered by the worker with its model's chat template. */
  messages?: ChatMessage[];
  model: string | undefined;
  /** Added as optional: absent means the rest of the context after the prompt. */
  max_tokens: number | undefined;
  /** Added: how to sample; the seed's clients send none (greedy). */
  sampling: SamplingParams;
  /**
   * Added: the client's conversation (its `x-session-id`). After a turn that completes, the worker
   * keeps the sequence's KV cache so that the next turn evaluates only its new tokens.
   */
  conversation_id?: string;
  /**
   * Added: a chat's tools (tools/worker-tools.ts). The worker renders them and the tool history
   * with its template when the template has its own tool-call syntax, else `messages` as usual.
   */
  tools?: WorkerTools;
}

export interface PrefillResponse {
  status: "ok";
  prompt_tokens: number;
  kv_cache_bytes: number;
  /** Added: prompt tokens whose KV was already held and not evaluated again. */
  cached_tokens: number;
  /** Added: the KV tier this conversation was restored from; its tokens count in cached_tokens. */
  kv_tier?: "host" | "disk";
  restored_tokens?: number;
  worker_id: string;
  /** Added: the generation limit in force (the request's, or the rest of the context). */
  max_tokens?: number;
  /** Added: set when the request's tool calls come in the model's own syntax (else the generic format). */
  tool_syntax?: NativeCallSyntax;
}

/**
 * Added: the first event of `POST /worker/generate` (prefill and decode in one exchange): the
 * prefill's answer exactly as `/worker/prefill` gives it. The session's decode events follow it
 * (token events from seq 0, then the final event), as `/worker/decode` sends them. A refusal comes
 * instead of this stream, with /worker/prefill's status and JSON body, before any SSE byte.
 */
export interface GenerateAckEvent {
  prefill: PrefillResponse;
}

export interface DecodeRequest {
  session_id: string;
  /** At most the prefill's max_tokens; absent means the prefill's. */
  max_tokens: number | undefined;
}

export type StopReason = "length" | "stop" | "cancelled" | "error";

/** One SSE event of /worker/decode. The last has `finished: true` and carries no token text. */
export interface DecodeTokenEvent {
  token: string;
  seq: number;
  /** Added: when the sampling asked for `top_logprobs`, this token's entry (token-logprobs.ts). */
  logprobs?: LogprobContent[];
}

export interface DecodeFinalEvent {
  /** Text held back while it could have begun a stop string, released at the end (usually ""). */
  token: string;
  seq: number;
  finished: true;
  reason: StopReason;
  prompt_tokens: number;
  completion_tokens: number;
  error?: { code: string; message: string };
  /**
   * Added: the prefix-cache event of the sequence this stream leaves behind (heartbeat.ts), so the
   * coordinator that relays the end knows of it before the client can send its next turn.
   */
  cache?: CacheNotice;
}

export function parsePrefillRequest(o: JsonObject): PrefillRequest {
  const session_id = requireSessionId(o);
  const hasMessages = o.messages !== undefined && o.messages !== null;
  const prompt = hasMessages ? undefined : requireStringPrompt(o);
  if (hasMessages && o.prompt !== undefined && o.prompt !== null) {
    throw new ServingError("invalid_request", "give either 'prompt' or 'messages', not both", { param: "messages" });
  }
  const messages = hasMessages ? readChatMessages(o.messages) : undefined;
  const model = optionalString(o, "model", { maxLength: 256 });
  const max_tokens = optionalInteger(o, "max_tokens", 1, MAX_TOKENS_CEILING);
  const conversation_id = o.conversation_id === undefined || o.conversation_id === null ? undefined : requireSessionId(o, "conversation_id");
  let sampling: SamplingParams = {};
  if (o.sampling !== undefined && o.sampling !== null) {
    if (typeof o.sampling !== "object" || Array.isArray(o.sampling)) {
      throw new ServingError("invalid_field", "'sampling' must be an object", { param: "sampling" });
    }
    sampling = readSampling(o.sampling as JsonObject);
    readJsonSchemaOrText(o.sampling as JsonObject, sampling);
  }
  const tools = messages !== undefined ? readWorkerTools(o.tools) : undefined;
  return {
    session_id, model, max_tokens, sampling,
    ...(prompt !== undefined ? { prompt } : {}),
    ...(messages !== undefined ? { messages } : {}),
    ...(conversation_id !== undefined ? { conversation_id } : {}),
    ...(tools !== undefined ? { tools } : {}),
  };
}

function requireStringPrompt(o: JsonObject): string {
  if (o.prompt === undefined || o.prompt === null) throw new ServingError("missing_field", "missing required field 'prompt' (or 'messages')", { param: "prompt" });
  const p = optionalString(o, "prompt", { nonEmpty: true, maxLength: MAX_PROMPT_CHARS });
  return p!;
}

export function parseDecodeRequest(o: JsonObject): DecodeRequest {
  return { session_id: requireSessionId(o), max_tokens: optionalInteger(o, "max_tokens", 1, MAX_TOKENS_CEILING) };
}

export function parseCancelRequest(o: JsonObject): { session_id: string } {
  return { session_id: requireSessionId(o) };
}

/** A cached sequence handed from a draining worker to another (KV handoff by re-prefill). */
export interface HandoffEntry {
  conversation_id: string | null;
  /** Token ids the sequence holds, in order (the model's own ids: both workers serve the same model). */
  tokens: number[];
  /** Block keys of its canonical text (prefix-blocks.ts), published by the adopter. */
  blocks: string[];
  /**
   * Added: the sequence's KV itself, base64 of a KV state file (worker/kv-state-file.ts: engine
   * identity, tokens, checksum). An adopter whose engine has the same identity restores it instead
   * of prefilling `tokens`; any other adopter, or a file that fails its checks, prefills as before.
   */
  kv_state?: string;
}

/** `POST /worker/drain`: the worker stops taking sessions and lists what it caches, most recent first. */
export interface DrainListing {
  worker_id: string;
  model: string;
  running: number;
  entries: HandoffEntry[];
}

/**
 * `POST /worker/export` `{conversation_id}`: a copy of a conversation's KV for another worker (a
 * move away from a worker that cannot take the conversation's turn). The answer body is exactly
 * an adopt body (`HandoffEntry` with `kv_state`, and `model`), so a coordinator streams it into
 * the adopter's `POST /worker/adopt` without reading it; what it needs to know travels in these
 * headers. 404 `not_found` when the worker holds none of it, or no state it can hand over (its
 * engine cannot save one, or the adopt body would exceed the adopters' body limit).
 */
export const KV_EXPORT_HEADERS = {
  /** Tokens the state holds. */
  tokens: "x-kv-tokens",
  /** The state file's bytes before base64. */
  stateBytes: "x-kv-state-bytes",
  /** Where the worker held it: `slot`, `host` or `disk`. */
  source: "x-kv-source",
} as const;

export type KvExportSource = "slot" | "host" | "disk";

/** `POST /worker/adopt`'s answer; `restore_ms`: time spent restoring `kv_state` (ms). */
export interface AdoptAnswer {
  status: "ok";
  tokens: number;
  slot: number;
  kv_restored: boolean;
  restore_ms?: number;
}

const CONVERSATION_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export function parseExportRequest(o: JsonObject): { conversation_id: string } {
  const conv = o.conversation_id;
  if (typeof conv !== "string" || !CONVERSATION_ID_RE.test(conv)) {
    throw new ServingError("invalid_field", "'conversation_id' must be 1-128 letters, digits or . _ : -", { param: "conversation_id" });
  }
  return { conversation_id: conv };
}

export const MAX_HANDOFF_BLOCKS = 65_536;

export function parseAdoptRequest(o: JsonObject, vocabSize: number, contextSize: number): HandoffEntry & { model: string | undefined } {
  const conv = o.conversation_id;
  if (conv !== undefined && conv !== null && (typeof conv !== "string" || !CONVERSATION_ID_RE.test(conv))) {
    throw new ServingError("invalid_field", "'conversation_id' must be 1-128 letters, digits or . _ : -", { param: "conversation_id" });
  }
  const tokens = o.tokens;
  if (!Array.isArray(tokens) || tokens.length < 2 || tokens.length >= contextSize) {
    throw new ServingError("invalid_field", `'tokens' must be a list of 2 to ${contextSize - 1} token ids`, { param: "tokens" });
  }
  for (const t of tokens) {
    if (typeof t !== "number" || !Number.isInteger(t) || t < 0 || (vocabSize > 0 && t >= vocabSize)) {
      throw new ServingError("invalid_field", "'tokens' holds a value that is not a token id of this model", { param: "tokens" });
    }
  }
  const blocks = o.blocks ?? [];
  if (!Array.isArray(blocks) || blocks.length > MAX_HANDOFF_BLOCKS || !blocks.every((b) => typeof b === "string" && b.length > 0 && b.length <= 64)) {
    throw new ServingError("invalid_field", "'blocks' must be a list of block keys", { param: "blocks" });
  }
  const kvState = o.kv_state;
  if (kvState !== undefined && (typeof kvState !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(kvState))) {
    throw new ServingError("invalid_field", "'kv_state' must be base64", { param: "kv_state" });
  }
  return {
    conversation_id: typeof conv === "string" ? conv : null,
    tokens: tokens as number[],
    blocks: blocks as string[],
    model: optionalString(o, "model", { maxLength: 256 }),
    ...(typeof kvState === "string" ? { kv_state: kvState } : {}),
  };
}

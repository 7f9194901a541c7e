import type { Logger } from "../../common/logger.js";
import type { ChatMessage } from "../../protocol/chat.js";
import type { SamplingParams } from "../../protocol/sampling.js";
import type { PrefillResponse } from "../../protocol/worker-api.js";
import type { WorkerTools } from "../../protocol/tools/worker-tools.js";
import type { PrefixMatch } from "../fleet/prefix-index.js";
import type { RequestTelemetry } from "../telemetry/request-telemetry.js";
import type { Decision } from "../scheduler/types.js";
import type { SessionLease } from "../fleet/session-tracker.js";
import type { UpstreamSource } from "../stream/upstream.js";
import type { KvMoved } from "./kv-move.js";

/** What a front door asks of the inference pipeline, and what it gets back once a stream has started. */
export interface InferenceJob {
  requestId: string;
  log: Logger;
  /** The model name the client asked for. */
  model: string;
  /** Exactly one of `prompt` (text) and `messages` (chat, rendered by the worker). */
  prompt?: string;
  messages?: ChatMessage[];
  /** A chat's tools with their structured history (the worker picks the call format). */
  tools?: WorkerTools;
  /** Undefined: the rest of the context after the prompt (the worker knows how much that is). */
  maxTokens: number | undefined;
  sampling: SamplingParams;
  /** The client's conversation (`x-session-id`), for KV reuse across turns. */
  conversationId?: string;
  /** Order in the admission queue: lower first (default 0). */
  priority?: number;
  /** Called while the request waits in the admission queue: its position (1 = next) and the queue's size. */
  onQueued?: (position: number, size: number) => void;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  /** Rate-limit identity: an API key's id, or the client's address. */
  clientId: string;
  /** How the front door names an unknown model: the seed API answers 400, OpenAI 404. */
  unknownModel: "unknown_model" | "model_not_found";
  /** A fleet serving one model serves any name (the seed API's rule, unless STRICT_MODEL). */
  anyNameWhenSingleModel: boolean;
  /** The client's W3C `traceparent` header, if any. */
  traceparent?: string;
  /**
   * Only this worker may serve the request (OpenAI's `n`: the choices after the first go where the
   * first one's prompt KV is, which the worker copies instead of evaluating the prompt again).
   */
  pinWorker?: string;
}

export interface StartedInference {
  /** The canonical id of the model serving the request. */
  readonly model: string;
  readonly sessionId: string;
  readonly workerId: string;
  readonly workerUrl: string;
  readonly lease: SessionLease;
  readonly prefill: PrefillResponse;
  readonly upstream: UpstreamSource;
  readonly decision: Extract<Decision, { ok: true }>;
  readonly attempts: number;
  /** The request's prompt against the prefix index. */
  readonly prefix: PrefixMatch;
  /** Time spent in the admission queue (ms; 0 when admitted at once). */
  readonly queuedMs: number;
  /** The conversation's KV moved to this worker from one that could not take the turn (kv-move.ts). */
  readonly kvMoved?: KvMoved;
  /** Metrics, timeline and spans of this request; `stream()` ends them. */
  readonly telemetry: RequestTelemetry;
  /** Closes the current decode request, which cancels the session on its worker. */
  abortUpstream(): void;
  /** The worker streaming now (differs from `workerId` after a failover). */
  currentWorkerId(): string;
  /**
   * Continues a stream whose worker failed mid-decode on another worker: prefill of the prompt and
   * the text already relayed, then decode of the rest. Undefined when no attempt is left or none
   * succeeds; the caller then ends the stream with an error.
   */
  failover(failure: { code: string; message: string; died?: boolean }, relayed: { text: string; tokens: number }, signal: AbortSignal): Promise<UpstreamSource | undefined>;
}

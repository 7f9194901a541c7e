import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import type { Clock } from "../common/clock.js";
import type { CoordinatorConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import type { Rng } from "../common/rng.js";
import { ServingError } from "../common/serving-error.js";
import type { ChatMessage } from "../protocol/chat.js";
import type { SamplingParams } from "../protocol/sampling.js";
import { parseCacheNotice } from "../protocol/heartbeat.js";
import { canonicalText } from "../protocol/prefix-blocks.js";
import type { PrefillRequest, PrefillResponse } from "../protocol/worker-api.js";
import { AdmissionGate, noCandidate, type Admitted } from "./admission-gate.js";
import type { AdmissionQueue } from "./admission-queue.js";
import type { CoordinatorTelemetry } from "./coordinator-telemetry.js";
import type { PrefixIndex, PrefixMatch } from "./prefix-index.js";
import { PromptTokenEstimator } from "./prompt-token-estimator.js";
import type { RateLimiter } from "./rate-limiter.js";
import { relay, type FinalInfo, type RelayResult, type StreamFormat } from "./relay.js";
import type { RequestTelemetry } from "./request-telemetry.js";
import { RouteLog } from "./route-log.js";
import { schedule } from "./scheduler/schedule.js";
import type { Candidate, Decision, Profile, RouteRequest } from "./scheduler/types.js";
import { collectStream, type CollectResult } from "./stream-collector.js";
import { SessionTracker, type SessionLease } from "./session-tracker.js";
import { WorkerClient, WorkerFault, isCapacityError } from "./worker-client.js";
import type { WorkerTable } from "./worker-table.js";

/**
 * One pipeline behind every front door: resolve the model, rate-limit, admit in O(1) (or wait in
 * the admission queue for capacity), schedule with the configured profile (the prefix index tells
 * which workers hold the prompt; a conversation's `x-session-id` is its affinity key), prefill (on
 * failure: another worker, fresh session id, up to PREFILL_RETRIES), start the decode stream.
 * Errors before the stream starts are ServingErrors the front door answers with a status; once a
 * stream has started it is never replayed.
 */
export interface InferenceJob {
  requestId: string;
  log: Logger;
  /** The model name the client asked for. */
  model: string;
  /** Exactly one of `prompt` (text) and `messages` (chat, rendered by the worker). */
  prompt?: string;
  messages?: ChatMessage[];
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
}

export interface StartedInference {
  /** The canonical id of the model serving the request. */
  readonly model: string;
  readonly sessionId: string;
  readonly workerId: string;
  readonly workerUrl: string;
  readonly lease: SessionLease;
  readonly prefill: PrefillResponse;
  readonly upstream: Readable;
  readonly decision: Extract<Decision, { ok: true }>;
  readonly attempts: number;
  /** The request's prompt against the prefix index. */
  readonly prefix: PrefixMatch;
  /** Time spent in the admission queue (ms; 0 when admitted at once). */
  readonly queuedMs: number;
  /** Metrics, timeline and spans of this request; `stream()` ends them. */
  readonly telemetry: RequestTelemetry;
  /** Closes the decode request, which cancels the session on the worker. */
  abortUpstream(): void;
}

export interface PipelineDeps {
  config: CoordinatorConfig;
  table: WorkerTable;
  tracker: SessionTracker;
  client: WorkerClient;
  profile: Profile;
  clock: Clock;
  rng: Rng;
  log: Logger;
  rateLimiter: RateLimiter;
  telemetry: CoordinatorTelemetry;
  index: PrefixIndex;
  queue: AdmissionQueue;
}

export class InferencePipeline {
  readonly estimator = new PromptTokenEstimator();
  /** The last routing decisions, for operators (`GET /coordinator/health/routing`). */
  readonly routes = new RouteLog();
  private sequence = 0;
  private readonly gate: AdmissionGate;

  constructor(private readonly d: PipelineDeps) {
    this.gate = new AdmissionGate({ config: d.config, table: d.table, tracker: d.tracker, queue: d.queue, clock: d.clock });
  }

  get profile(): Profile {
    return this.d.profile;
  }

  /** The canonical model id that serves `name` (see README: single-model fleets serve any name). */
  resolveModel(name: string, unknown: InferenceJob["unknownModel"], anyNameWhenSingle = true): string {
    const { table } = this.d;
    const exact = table.modelFor(name);
    if (exact !== undefined) return exact;
    const served = table.models();
    if (served.length === 0) throw new ServingError("no_workers", "no worker is available");
    if (served.length === 1 && anyNameWhenSingle && !this.d.config.strictModel) return served[0]!;
    throw new ServingError(unknown, `model '${name}' is not served; served models: ${served.join(", ")}`, {
      param: "model", details: { served_models: served },
    });
  }

  snapshot(): Candidate[] {
    const { table, tracker } = this.d;
    const now = this.d.clock.now();
    return table.list().map((e) => {
      const local = tracker.load(e.id);
      const h = e.health;
      return {
        id: e.id,
        url: e.url,
        model: h.model.id,
        fresh: table.isFresh(e, now),
        healthy: e.breaker.allows(now) && h.alive,
        draining: h.draining,
        sessions: Math.max(h.active_sessions, local.sessions),
        maxSessions: h.limits.max_sessions,
        kvBytes: Math.max(h.kv_reserved_bytes, local.kvBytes),
        maxKvBytes: h.limits.max_kv_bytes,
        maxSessionKvBytes: h.limits.max_session_kv_bytes,
        kvBytesPerToken: h.model.kv_bytes_per_token,
        contextSize: h.model.context_size,
        waiting: h.waiting,
        slotsTotal: h.slots.total,
      };
    });
  }

  async start(job: InferenceJob): Promise<StartedInference> {
    const tel = this.d.telemetry.begin({
      requestId: job.requestId, model: job.model, maxTokens: job.maxTokens, traceparent: job.traceparent,
    });
    try {
      return await this.run(job, tel);
    } catch (err) {
      tel.failed(err, job.signal.aborted);
      throw err;
    }
  }

  /**
   * Relays a started inference to the client with its telemetry hooks; ends the request's
   * telemetry, and tells the worker's breaker how the stream ended.
   */
  async stream(started: StartedInference, res: ServerResponse, format: StreamFormat, log: Logger): Promise<RelayResult> {
    const tel = started.telemetry;
    const { config } = this.d;
    tel.streamStarted(started.workerId, config.relayBufferTokens);
    let result: RelayResult | undefined;
    try {
      result = await relay({
        upstream: started.upstream, res, format, log,
        bufferTokens: config.relayBufferTokens, writeTimeoutMs: config.clientWriteTimeoutMs,
        abortUpstream: started.abortUpstream,
        onFirstToken: tel.onFirstToken, onTokens: tel.onTokens, onSlowClient: tel.onSlowClient, onWriteWait: tel.onWriteWait,
      });
      this.streamOutcome(started.workerId, result.termination, result.final);
      return result;
    } finally {
      tel.end(result);
    }
  }

  /** Reads a started inference to its end for a one-body answer (no stream), with its telemetry. */
  async collect(started: StartedInference, res: ServerResponse, log: Logger): Promise<CollectResult> {
    const tel = started.telemetry;
    tel.streamStarted(started.workerId, this.d.config.relayBufferTokens);
    let result: CollectResult | undefined;
    try {
      result = await collectStream({ upstream: started.upstream, res, log, abortUpstream: started.abortUpstream });
      this.streamOutcome(started.workerId, result.termination, result.final);
      return result;
    } finally {
      tel.collected(result);
    }
  }

  /**
   * A stream that completed counts for its worker's breaker; one the worker broke, against it. A
   * completed stream's cache notice goes into the prefix index before the client (which has the
   * end already) can send its next turn: this runs before the event loop reads another request.
   */
  private streamOutcome(workerId: string, termination: string, final: FinalInfo | undefined): void {
    if (termination === "worker_error" || termination === "complete") this.streamEnded(workerId, termination === "worker_error");
    const notice = final?.cache === undefined ? undefined : parseCacheNotice(final.cache);
    if (notice !== undefined) this.d.index.applyNotice(workerId, notice);
  }

  private async run(job: InferenceJob, tel: RequestTelemetry): Promise<StartedInference> {
    const { config, table, tracker, client, log } = this.d;
    const model = this.resolveModel(job.model, job.unknownModel, job.anyNameWhenSingleModel);
    const promptBytes = promptBytesOf(job);
    // Without max_tokens the worker reserves the whole context; so does the estimate.
    const generation = job.maxTokens ?? (table.capacity(model).maxContextSize || FALLBACK_CONTEXT_TOKENS);
    const tokens = this.estimator.estimate(model, promptBytes) + generation;
    const rate = this.d.rateLimiter.take(job.clientId, tokens, this.d.clock.now());
    if (!rate.ok) {
      job.log.info({ limit: rate.limit, client: job.clientId }, "ratelimit.reject");
      throw new ServingError("rate_limited", `rate limit of ${rate.limit} per minute reached`, { retryAfterS: rate.retryAfterS });
    }
    const conversation = job.conversationId;
    const prefix = this.d.index.match(canonicalText(job.messages !== undefined ? { messages: job.messages } : { prompt: job.prompt! }));
    const route = (exclude: ReadonlySet<string>): RouteRequest => ({ model, tokens, exclude, affinityKey: conversation, prefix });
    const sequence = this.sequence++;
    const decide = (exclude: ReadonlySet<string>) =>
      schedule(this.d.profile, this.snapshot(), route(exclude), { nowMs: this.d.clock.now(), rng: this.d.rng, sequence });

    const admissionSpan = tel.span("admission");
    let admitted: Admitted;
    try {
      const a = this.gate.enter({
        model, tokens, priority: job.priority ?? 0, signal: job.signal, log: job.log, decide: () => decide(new Set()),
        ...(job.onQueued ? { onQueued: job.onQueued } : {}),
      });
      // The fast path answers synchronously: the capacity it saw is claimed below in the same turn.
      admitted = a instanceof Promise ? await a : a;
    } catch (err) {
      admissionSpan.setError(err instanceof ServingError ? err.code : "error");
      admissionSpan.end();
      throw err;
    }
    tel.admission(admitted.admission, admissionSpan);
    const { queuedMs } = admitted;
    // Leaving wakes the next in line, whose own check runs only after this request has claimed its
    // capacity (below, synchronously up to the first prefill).
    admitted.ticket?.leave();

    const exclude = new Set<string>();
    const failures: { worker: string; error: string }[] = [];
    let lastCapacityError: ServingError | undefined;
    let capacityFailures = 0;
    let lastDecision: Decision | undefined;
    for (let attempt = 0; attempt <= config.prefillRetries; attempt++) {
      const scheduleSpan = tel.span("schedule");
      const decision = attempt === 0 ? admitted.decision : decide(exclude);
      tel.scheduled(decision, attempt, scheduleSpan);
      lastDecision = decision;
      if (!decision.ok) break;
      const w = decision.pick.candidate;
      exclude.add(w.id);
      const wlog = job.log.child({ worker_id: w.id });
      this.explain(wlog, decision, prefix, attempt);
      const sessionId = randomUUID();
      const lease = tracker.open(job.requestId, w.id, tokens * w.kvBytesPerToken);
      table.dispatched(w.id);
      const upstreamAbort = new AbortController();
      const onClientAbort = () => upstreamAbort.abort();
      job.signal.addEventListener("abort", onClientAbort, { once: true });
      let prefilled = false;
      const prefillSpan = tel.prefillStarted(w.id, sessionId);
      const prefillStartMs = this.d.clock.now();
      try {
        if (job.signal.aborted) throw new WorkerFault("client went away", "aborted");
        const body: PrefillRequest = {
          session_id: sessionId, model: job.model, max_tokens: job.maxTokens, sampling: job.sampling,
          ...(job.messages !== undefined ? { messages: job.messages } : { prompt: job.prompt! }),
          ...(conversation !== undefined ? { conversation_id: conversation } : {}),
        };
        const prefill = await client.prefill(w.url, body, {
          requestId: job.requestId, signal: upstreamAbort.signal, headers: tel.traceHeaders(prefillSpan),
        });
        prefilled = true;
        tel.prefillDone(prefillSpan, prefill, prefillStartMs);
        table.recordSuccess(w.id);
        lease.trueUp(prefill.kv_cache_bytes);
        this.estimator.observe(model, promptBytes, prefill.prompt_tokens);
        const decodeSpan = tel.decodeStarted(w.id, sessionId);
        const upstream = await client.decode(w.url, sessionId, job.maxTokens, {
          requestId: job.requestId, signal: upstreamAbort.signal, headers: tel.traceHeaders(decodeSpan),
        });
        job.signal.removeEventListener("abort", onClientAbort);
        this.routes.record(this.d.clock.wallNow(), job.requestId, decision, prefix, queuedMs, attempt + 1, prefill.cached_tokens, prefill.prompt_tokens);
        wlog.debug({ session_id: sessionId, prompt_tokens: prefill.prompt_tokens, cached_tokens: prefill.cached_tokens }, "prefill.done");
        return {
          model, sessionId, workerId: w.id, workerUrl: w.url, lease, prefill, upstream, decision, attempts: attempt + 1, prefix, queuedMs, telemetry: tel,
          abortUpstream: () => upstreamAbort.abort(),
        };
      } catch (err) {
        if (prefilled) tel.decodeFailed(w.id, (err as Error).message);
        else tel.prefillFailed(prefillSpan, w.id, (err as Error).message);
        job.signal.removeEventListener("abort", onClientAbort);
        lease.release();
        if (prefilled) void client.cancel(w.url, sessionId, job.requestId);
        if (job.signal.aborted) throw new ServingError("invalid_request", "client went away", { cause: err });
        if (err instanceof ServingError && !isCapacityError(err)) throw err; // the request's own fault: no retry
        if (err instanceof ServingError) {
          lastCapacityError = err;
          capacityFailures++;
        }
        if (err instanceof WorkerFault && err.kind !== "aborted") table.recordFault(w.id, err.kind);
        const message = (err as Error).message;
        failures.push({ worker: w.id, error: message });
        wlog.warn({ session_id: sessionId, err: message, attempt }, "prefill.failed");
      }
    }
    if (failures.length === 0) {
      const refusal = noCandidate(lastDecision);
      job.log.info({ reason: refusal.code, dropped: lastDecision?.dropped ?? {} }, "scheduler.reject");
      throw refusal;
    }
    // Every worker tried was merely full: that is capacity (503), not a failure (502).
    if (lastCapacityError !== undefined && capacityFailures === failures.length) throw lastCapacityError;
    throw new ServingError("worker_failed", `prefill failed on ${failures.map((f) => `${f.worker} (${f.error})`).join(", ")}`, {
      details: { tried: failures },
    });
  }

  /** Why this worker: the pick at info, every candidate's breakdown at debug. */
  private explain(log: Logger, d: Extract<Decision, { ok: true }>, prefix: PrefixMatch, attempt: number): void {
    log.info(
      {
        profile: d.profile, score: round(d.pick.total), scores: d.pick.scores,
        runner_up: d.runnerUp ? { worker_id: d.runnerUp.candidate.id, score: round(d.runnerUp.total) } : null,
        ...(d.home !== undefined ? { home: d.home } : {}),
        ...(d.saturated.length > 0 ? { saturated: d.saturated } : {}),
        prefix_blocks: prefix.blocks, prefix_matched: prefix.matched.get(d.pick.candidate.id) ?? 0,
        attempt,
      },
      "scheduler.select",
    );
    if (log.isLevelEnabled("debug")) {
      log.debug(
        {
          profile: d.profile, considered: d.considered, dropped: d.dropped,
          candidates: d.ranked.map((s) => ({ worker_id: s.candidate.id, score: round(s.total), scores: s.scores })),
        },
        "scheduler.decision",
      );
    }
  }

  /** A stream that broke mid-decode counts as a worker fault; one that completed as a success. */
  streamEnded(workerId: string, brokenByWorker: boolean): void {
    if (brokenByWorker) this.d.table.recordFault(workerId, "stream");
    else this.d.table.recordSuccess(workerId);
  }
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;

/** Context assumed for a model whose workers report none (seed workers), in tokens. */
const FALLBACK_CONTEXT_TOKENS = 2048;
/** Bytes counted per chat message for the template's own text (role markers, separators). */
const CHAT_MESSAGE_OVERHEAD_BYTES = 16;

function promptBytesOf(job: InferenceJob): number {
  if (job.messages === undefined) return Buffer.byteLength(job.prompt ?? "");
  let n = 0;
  for (const m of job.messages) n += Buffer.byteLength(m.content) + CHAT_MESSAGE_OVERHEAD_BYTES;
  return n;
}

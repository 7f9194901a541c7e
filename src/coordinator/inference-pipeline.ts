import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import type { Clock } from "../common/clock.js";
import { isClientErrorCode } from "../common/error-mapping.js";
import type { CoordinatorConfig } from "../common/config.js";
import type { Logger } from "../common/logger.js";
import type { Rng } from "../common/rng.js";
import { ServingError } from "../common/serving-error.js";
import { parseCacheNotice } from "../protocol/heartbeat.js";
import { canonicalText, type PromptInput } from "../protocol/prefix-blocks.js";
import type { PrefillRequest, PrefillResponse } from "../protocol/worker-api.js";
import { AdmissionGate, noCandidate, type Admitted } from "./admission-gate.js";
import type { AdmissionQueue } from "./admission-queue.js";
import type { ClientCaps } from "./client-caps.js";
import type { CoordinatorTelemetry } from "./coordinator-telemetry.js";
import type { PrefixIndex, PrefixMatch } from "./prefix-index.js";
import { PromptTokenEstimator } from "./prompt-token-estimator.js";
import type { RateLimiter } from "./rate-limiter.js";
import { relay, type FinalInfo, type RelayResult, type StreamFormat } from "./relay.js";
import type { RequestTelemetry } from "./request-telemetry.js";
import { RouteLog, logDecision } from "./route-log.js";
import { schedule } from "./scheduler/schedule.js";
import type { Candidate, Decision, Profile } from "./scheduler/types.js";
import { collectStream, type CollectResult } from "./stream-collector.js";
import { candidatesOf } from "./candidate-snapshot.js";
import type { InferenceJob, StartedInference } from "./inference-job.js";
import { SessionTracker, type SessionLease } from "./session-tracker.js";
import { WorkerClient, WorkerFault, isCapacityError } from "./worker-client.js";
import { PoisonGuard, type RequestCrashes } from "./poison-guard.js";
import { neverFits } from "./fit-check.js";
import type { FaultKind } from "./circuit-breaker.js";
import type { WorkerTable } from "./worker-table.js";

/**
 * One pipeline behind every front door: resolve the model, rate-limit, admit in O(1) (or wait in
 * the admission queue for capacity: admission-gate.ts), schedule with the configured profile (the
 * prefix index tells which workers hold the prompt; a conversation's `x-session-id` is its affinity
 * key), prefill (on failure: another worker, fresh session id, up to PREFILL_RETRIES), start the
 * decode stream. Errors before the stream starts are ServingErrors the front door answers with a
 * status; once a stream has started it is never replayed (a failover continues it elsewhere).
 */
export type { InferenceJob, StartedInference } from "./inference-job.js";

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
  caps: ClientCaps;
}

export class InferencePipeline {
  readonly estimator = new PromptTokenEstimator();
  /** The last routing decisions, for operators (`GET /coordinator/health/routing`). */
  readonly routes = new RouteLog();
  /** Requests scheduled so far (the round-robin picker's cursor). */
  private sequence = 0;
  private readonly gate: AdmissionGate;
  /** Requests on which two workers died: identical ones are refused at once (POISON_TTL_MS). */
  readonly poison: PoisonGuard;

  constructor(private readonly d: PipelineDeps) {
    this.poison = new PoisonGuard({
      ttlMs: d.config.poisonTtlMs, maxEntries: d.config.poisonMaxEntries, clock: d.clock, metrics: d.telemetry.metrics,
    });
    this.gate = new AdmissionGate({ config: d.config, table: d.table, tracker: d.tracker, queue: d.queue, clock: d.clock, caps: d.caps });
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
    return candidatesOf(this.d.table, this.d.tracker, this.d.clock.now());
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
        ...this.resilience(started),
      });
      this.streamOutcome(started.currentWorkerId(), result.termination, result.final, result.error);
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
      result = await collectStream({ upstream: started.upstream, res, log, abortUpstream: started.abortUpstream, ...this.resilience(started) });
      this.streamOutcome(started.currentWorkerId(), result.termination, result.final, result.error);
      return result;
    } finally {
      tel.collected(result);
    }
  }

  /** Stall timeouts and failover, shared by streamed and one-body answers. */
  private resilience(started: StartedInference) {
    const { config } = this.d;
    return {
      firstTokenTimeoutMs: config.firstTokenTimeoutMs,
      stallTimeoutMs: config.streamStallTimeoutMs,
      promptTokens: started.prefill.prompt_tokens,
      ...(config.maxFailovers > 0 ? { failover: started.failover } : {}),
      onFailover: () => this.d.telemetry.failover(),
    };
  }

  /**
   * A stream that completed counts for its worker's breaker; one the worker broke, against it. A
   * completed stream's cache notice goes into the prefix index before the client (which has the
   * end already) can send its next turn: this runs before the event loop reads another request.
   */
  private streamOutcome(workerId: string, termination: string, final: FinalInfo | undefined, error: { code: string } | undefined): void {
    // An error the request itself caused (a client code in the worker's error event) is no fault of the worker's.
    const clientFault = error !== undefined && isClientErrorCode(error.code);
    if (termination === "complete" || termination === "worker_error") this.streamEnded(workerId, termination === "worker_error" && !clientFault);
    const notice = final?.cache === undefined ? undefined : parseCacheNotice(final.cache);
    if (notice !== undefined) this.d.index.applyNotice(workerId, notice);
  }

  private async run(job: InferenceJob, tel: RequestTelemetry): Promise<StartedInference> {
    const { config, table, log } = this.d;
    const model = this.resolveModel(job.model, job.unknownModel, job.anyNameWhenSingleModel);
    // A request that already took down two workers is refused before it touches a third.
    const crashes = this.poison.check(model, job);
    const promptBytes = promptBytesOf(job);
    // Without max_tokens the worker reserves the whole context; so does the estimate.
    const generation = job.maxTokens ?? (table.capacity(model).maxContextSize || FALLBACK_CONTEXT_TOKENS);
    const tokens = this.estimator.estimate(model, promptBytes) + generation;
    // The request itself was counted before its body was read (client-preflight.ts); its tokens now.
    const rate = this.d.rateLimiter.takeTokens(job.clientId, tokens, this.d.clock.now());
    if (!rate.ok) {
      job.log.info({ limit: rate.limit, client: job.clientId }, "ratelimit.reject");
      throw new ServingError("rate_limited", `rate limit of ${rate.limit} per minute reached`, { retryAfterS: rate.retryAfterS });
    }
    const never = neverFits(this.snapshot(), model, tokens, job.maxTokens);
    if (never !== undefined) {
      job.log.info({ reason: never.code, tokens }, "admission.never_fits");
      throw never;
    }
    const sequence = this.sequence++;
    const prefix = this.d.index.match(canonicalText(inputOf(job, undefined)));
    const arrivedMs = this.d.clock.now();
    let first: Dispatched;
    let queuedMs: number;
    // Workers this request has tried; a failover skips them too.
    let exclude = new Set<string>();
    for (let round = 0; ; round++) {
      const admitted = await this.admit(job, tel, { model, tokens, prefix, sequence });
      // After a capacity retry the request has waited since it arrived, in the queue or not.
      queuedMs = round === 0 ? admitted.queuedMs : this.d.clock.now() - arrivedMs;
      // Leaving wakes the next in line, whose own check runs only after this request has claimed its
      // capacity (in dispatch, synchronously up to the first prefill).
      admitted.ticket?.leave();
      exclude = new Set<string>();
      try {
        first = await this.dispatch(job, tel, {
          model, tokens, promptBytes, exclude, lease: undefined, continuation: undefined, attempts: config.prefillRetries + 1,
          prefix, sequence, queuedMs, firstDecision: admitted.decision, crashes,
        });
        break;
      } catch (err) {
        // Every worker tried answered that it is full, though the coordinator's count had room: a
        // session the coordinator already released may still be ending on its worker (its end travels
        // on a closing connection). With the queue on, the request waits a moment and goes through
        // admission again, within the queue's timeout, rather than failing.
        if (!isCapacityError(err) || !this.d.queue.enabled || job.signal.aborted) throw err;
        const waitMs = Math.min(CAPACITY_RETRY_MAX_MS, CAPACITY_RETRY_BASE_MS * 2 ** round);
        if (this.d.clock.now() - arrivedMs + waitMs > config.queueTimeoutMs) throw err;
        job.log.info({ reason: err.code, wait_ms: waitMs, round }, "queue.capacity_retry");
        await delay(waitMs, undefined, { signal: job.signal }).catch(() => undefined);
        if (job.signal.aborted) throw new ServingError("client_closed", "client went away", { cause: err });
      }
    }
    // Failover state: the stream's current worker and how many continuations are left.
    let current = first;
    let failoversLeft = config.maxFailovers;
    const started: StartedInference = {
      model, sessionId: first.sessionId, workerId: first.workerId, workerUrl: first.workerUrl, lease: first.lease, prefill: first.prefill,
      upstream: first.upstream, decision: first.decision, attempts: first.attempts, telemetry: tel, prefix, queuedMs,
      abortUpstream: () => current.abort.abort(),
      currentWorkerId: () => current.workerId,
      failover: async (failure, relayed, signal) => {
        const failed = current;
        failed.abort.abort();
        this.d.table.recordFault(failed.workerId, failure.code === "worker_stalled" ? "timeout" : "stream");
        void this.d.client.cancel(failed.workerUrl, failed.sessionId, job.requestId);
        // A worker that died mid-stream counts like one that died in prefill; the second death ends it.
        if (failure.died === true) {
          const poison = this.poison.workerDied(job, crashes, failed.workerId);
          if (poison !== undefined) throw poison;
        }
        // A grammar constrains the whole answer from its start; a continuation cannot resume one.
        if (failoversLeft <= 0 || job.sampling.grammar !== undefined || job.sampling.json_schema !== undefined || signal.aborted) return undefined;
        failoversLeft--;
        const remaining = job.maxTokens === undefined ? undefined : job.maxTokens - relayed.tokens;
        if (remaining !== undefined && remaining <= 0) return undefined;
        log.warn({ request_id: job.requestId, worker_id: failed.workerId, reason: failure.code, relayed_tokens: relayed.tokens }, "stream.failover");
        try {
          // A continuation may go anywhere: the KV the pin was for is on the failed worker.
          const next = await this.dispatch({ ...job, maxTokens: remaining, signal, pinWorker: undefined }, tel, {
            model, tokens, promptBytes: promptBytes + Buffer.byteLength(relayed.text), exclude, lease: first.lease,
            continuation: relayed.text, attempts: config.prefillRetries + 1,
            prefix: this.d.index.match(canonicalText(inputOf(job, relayed.text))), sequence, queuedMs: 0, firstDecision: undefined, crashes,
          });
          current = next;
          return next.upstream;
        } catch (err) {
          if (err instanceof ServingError && err.code === "request_crashed_worker") throw err;
          log.warn({ request_id: job.requestId, err: (err as Error).message }, "stream.failover_failed");
          return undefined;
        }
      },
    };
    return started;
  }

  /** The admission gate (O(1) check, first decision, the queue at capacity), with its span. */
  private async admit(job: InferenceJob, tel: RequestTelemetry, p: { model: string; tokens: number; prefix: PrefixMatch; sequence: number }): Promise<Admitted> {
    const admissionSpan = tel.span("admission");
    let admitted: Admitted;
    try {
      const a = this.gate.enter({
        model: p.model, tokens: p.tokens, priority: job.priority ?? 0, clientId: job.clientId, signal: job.signal, log: job.log,
        decide: () => this.decide(job, { model: p.model, tokens: p.tokens, exclude: new Set(), prefix: p.prefix, sequence: p.sequence }),
        ...(job.onQueued ? { onQueued: job.onQueued } : {}),
      });
      // The fast path answers synchronously: the capacity it saw is claimed by the caller in the same turn.
      admitted = a instanceof Promise ? await a : a;
    } catch (err) {
      admissionSpan.setError(err instanceof ServingError ? err.code : "error");
      admissionSpan.end();
      throw err;
    }
    tel.admission(admitted.admission, admissionSpan);
    return admitted;
  }

  /**
   * Schedules and prefills on one worker after another (never one in `exclude`) until one answers,
   * then starts its decode stream. With a continuation, the prompt is followed by the text a failed
   * worker already produced (for chat: as the start of the assistant's answer), and the lease moves.
   */
  private async dispatch(job: InferenceJob, tel: RequestTelemetry, plan: DispatchPlan): Promise<Dispatched> {
    const { table, tracker, client } = this.d;
    const { model, tokens, promptBytes, exclude, continuation } = plan;
    const failures: { worker: string; error: string }[] = [];
    let lastCapacityError: ServingError | undefined;
    let capacityFailures = 0;
    let lastDecision: Decision | undefined;
    const conversation = job.conversationId;
    // A suspect request (a worker died on it) gets one more attempt at most.
    let attempts = plan.crashes.workers.length > 0 ? 1 : plan.attempts;
    for (let attempt = 0; attempt < attempts; attempt++) {
      const scheduleSpan = tel.span("schedule");
      const decision = attempt === 0 && plan.firstDecision !== undefined ? plan.firstDecision : this.decide(job, plan);
      tel.scheduled(decision, attempt, scheduleSpan);
      lastDecision = decision;
      if (!decision.ok) break;
      const w = decision.pick.candidate;
      exclude.add(w.id);
      const wlog = job.log.child({ worker_id: w.id });
      logDecision(wlog, decision, plan.prefix, { attempt, ...(continuation !== undefined ? { failover: true } : {}) });
      const sessionId = randomUUID();
      const lease = plan.lease ?? tracker.open(job.requestId, w.id, tokens * w.kvBytesPerToken);
      const previousWorker = lease.workerId;
      lease.moveTo(w.id);
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
          ...promptOf(job, continuation),
          ...(conversation !== undefined ? { conversation_id: conversation } : {}),
        };
        const prefill = await client.prefill(w.url, body, {
          requestId: job.requestId, signal: upstreamAbort.signal, headers: tel.traceHeaders(prefillSpan),
        });
        prefilled = true;
        tel.prefillDone(prefillSpan, prefill, prefillStartMs);
        table.recordSuccess(w.id);
        lease.trueUp(prefill.kv_cache_bytes);
        if (continuation === undefined) this.estimator.observe(model, promptBytes, prefill.prompt_tokens);
        const decodeSpan = tel.decodeStarted(w.id, sessionId);
        const upstream = await client.decode(w.url, sessionId, job.maxTokens, {
          requestId: job.requestId, signal: upstreamAbort.signal, headers: tel.traceHeaders(decodeSpan),
        });
        job.signal.removeEventListener("abort", onClientAbort);
        this.routes.record(this.d.clock.wallNow(), job.requestId, decision, plan.prefix, plan.queuedMs, attempt + 1, prefill.cached_tokens, prefill.prompt_tokens);
        wlog.debug({ session_id: sessionId, prompt_tokens: prefill.prompt_tokens, cached_tokens: prefill.cached_tokens }, "prefill.done");
        return { sessionId, workerId: w.id, workerUrl: w.url, lease, prefill, upstream, decision, attempts: attempt + 1, abort: upstreamAbort };
      } catch (err) {
        if (prefilled) tel.decodeFailed(w.id, (err as Error).message);
        else tel.prefillFailed(prefillSpan, w.id, (err as Error).message);
        job.signal.removeEventListener("abort", onClientAbort);
        if (plan.lease === undefined) lease.release();
        else lease.moveTo(previousWorker);
        if (prefilled) void client.cancel(w.url, sessionId, job.requestId);
        if (job.signal.aborted) throw new ServingError("client_closed", "client went away", { cause: err });
        if (err instanceof ServingError && !isCapacityError(err)) throw err; // the request's own fault: no retry
        if (err instanceof ServingError) {
          lastCapacityError = err;
          capacityFailures++;
        }
        if (err instanceof WorkerFault && err.kind !== "aborted") table.recordFault(w.id, breakerFault(err.kind));
        const message = (err as Error).message;
        const kind = err instanceof WorkerFault ? err.kind : (err as ServingError).code;
        failures.push({ worker: w.id, error: kind });
        if (err instanceof WorkerFault && err.kind === "auth") {
          wlog.error({ session_id: sessionId, status: err.status, err: message }, "worker.credentials_refused");
        } else {
          wlog.warn({ session_id: sessionId, err: message, attempt }, "prefill.failed");
        }
        if (err instanceof WorkerFault && err.kind === "died") {
          const poison = this.poison.workerDied(job, plan.crashes, w.id);
          if (poison !== undefined) throw poison;
          attempts = Math.min(attempts, attempt + 2);
        }
      }
    }
    if (failures.length === 0) {
      const refusal = noCandidate(lastDecision);
      job.log.info({ reason: refusal.code, dropped: lastDecision?.dropped ?? {} }, "scheduler.reject");
      throw refusal;
    }
    // Every worker tried refused the session as larger than its per-session limit, which no wait
    // changes (the coordinator's token estimate was low): refused, not queued.
    if (failures.every((f) => f.error === "session_kv_limit")) {
      throw new ServingError("session_kv_limit_exceeded", lastCapacityError?.message ?? "the request exceeds the per-session KV limit", { param: "max_tokens" });
    }
    // Every worker tried was merely full: that is capacity (503), not a failure (502).
    if (lastCapacityError !== undefined && capacityFailures === failures.length) throw lastCapacityError;
    // The workers' own error texts went to the log; the client learns which workers and what kind of failure.
    throw new ServingError("worker_failed", `prefill failed on ${failures.map((f) => `${f.worker} (${f.error})`).join(", ")}`, {
      details: { tried: failures },
    });
  }

  /** A stream that broke mid-decode counts as a worker fault; one that completed as a success. */
  streamEnded(workerId: string, brokenByWorker: boolean): void {
    if (brokenByWorker) this.d.table.recordFault(workerId, "stream");
    else this.d.table.recordSuccess(workerId);
  }

  /** Where the profile would send a conversation's next turn now (for a KV handoff). */
  placement(model: string, tokens: number, exclude: ReadonlySet<string>, conversationId: string | undefined): Decision {
    return schedule(
      this.d.profile, this.snapshot(),
      { model, tokens, exclude, affinityKey: conversationId, prefix: undefined },
      { nowMs: this.d.clock.now(), rng: this.d.rng },
    );
  }

  /** The profile's decision over the current snapshot, for a request (its conversation, prompt match). */
  private decide(job: InferenceJob, p: Pick<DispatchPlan, "model" | "tokens" | "exclude" | "prefix" | "sequence">): Decision {
    const snapshot = this.snapshot();
    const pin = job.pinWorker;
    const exclude = pin === undefined ? p.exclude : new Set([...p.exclude, ...snapshot.filter((c) => c.id !== pin).map((c) => c.id)]);
    return schedule(
      this.d.profile, snapshot,
      { model: p.model, tokens: p.tokens, exclude, affinityKey: job.conversationId, prefix: p.prefix },
      { nowMs: this.d.clock.now(), rng: this.d.rng, sequence: p.sequence },
    );
  }
}

interface DispatchPlan {
  model: string;
  /** Estimated prompt + generation tokens, for the KV filters and the lease's first reservation. */
  tokens: number;
  promptBytes: number;
  /** Workers tried already (for a failover: every worker the stream has used). */
  exclude: Set<string>;
  /** The stream's lease when it moves to another worker; undefined for a new request. */
  lease: SessionLease | undefined;
  /** Text the answer already has, for a continuation. */
  continuation: string | undefined;
  attempts: number;
  /** The prompt (with the continuation) against the prefix index. */
  prefix: PrefixMatch;
  /** The request's number (the round-robin picker's cursor). */
  sequence: number;
  queuedMs: number;
  /** The decision admission already made, for the first attempt. */
  firstDecision: Decision | undefined;
  /** Workers that died on this request so far (shared by its prefills and failovers). */
  crashes: RequestCrashes;
}

/** How a WorkerFault counts for its worker's circuit breaker. */
function breakerFault(kind: WorkerFault["kind"]): FaultKind {
  if (kind === "died") return "connect";
  if (kind === "auth") return "status";
  return kind === "aborted" ? "connect" : kind;
}

interface Dispatched {
  sessionId: string;
  workerId: string;
  workerUrl: string;
  lease: SessionLease;
  prefill: PrefillResponse;
  upstream: Readable;
  decision: Extract<Decision, { ok: true }>;
  attempts: number;
  abort: AbortController;
}

/** The prompt fields of a prefill: the job's, continued by the text already produced. */
function promptOf(job: InferenceJob, continuation: string | undefined): Pick<PrefillRequest, "prompt" | "messages"> {
  if (job.messages !== undefined) {
    return { messages: continuation === undefined ? job.messages : [...job.messages, { role: "assistant", content: continuation }] };
  }
  return { prompt: continuation === undefined ? job.prompt! : job.prompt! + continuation };
}

/**
 * A request that every worker refused as full while the coordinator counted room goes through
 * admission again after this wait (ms), doubling each round up to the cap, within QUEUE_TIMEOUT_MS.
 */
const CAPACITY_RETRY_BASE_MS = 10;
const CAPACITY_RETRY_MAX_MS = 200;
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

/** The same, as the prefix index's input. */
function inputOf(job: InferenceJob, continuation: string | undefined): PromptInput {
  const p = promptOf(job, continuation);
  return p.messages !== undefined ? { messages: p.messages } : { prompt: p.prompt! };
}

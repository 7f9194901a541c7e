import { setTimeout as delay } from "node:timers/promises";
import type { ServerResponse } from "node:http";
import type { Clock } from "../../common/clock.js";
import { isClientErrorCode } from "../../protocol/error-mapping.js";
import type { CoordinatorConfig } from "../../common/config.js";
import type { Logger } from "../../common/logger.js";
import type { Rng } from "../../common/rng.js";
import { ServingError } from "../../protocol/serving-error.js";
import { parseCacheNotice } from "../../protocol/heartbeat.js";
import { canonicalText } from "../../protocol/prefix-blocks.js";
import { AdmissionGate } from "../admission/admission-gate.js";
import { enterAdmission, type AdmissionOutcome } from "../admission/admission-entry.js";
import type { AdmissionQueue } from "../admission/admission-queue.js";
import type { ClientCaps } from "../admission/client-caps.js";
import type { CoordinatorTelemetry } from "../telemetry/coordinator-telemetry.js";
import type { PrefixIndex } from "../fleet/prefix-index.js";
import { PromptTokenEstimator } from "../admission/prompt-token-estimator.js";
import type { RateLimiter } from "../admission/rate-limiter.js";
import { relay, type FinalInfo, type RelayResult, type StreamFormat } from "../stream/relay.js";
import { FlushBatch } from "../stream/flush-batch.js";
import { Failover } from "../stream/failover.js";
import type { RequestEvents } from "../telemetry/request-events.js";
import type { RequestTelemetry } from "../telemetry/request-telemetry.js";
import { RouteLog } from "../telemetry/route-log.js";
import { schedule } from "../scheduler/schedule.js";
import type { Candidate, Decision, Profile } from "../scheduler/types.js";
import { collectStream, type CollectResult } from "../stream/stream-collector.js";
import { candidatesOf } from "../fleet/candidate-snapshot.js";
import type { InferenceJob, StartedInference } from "./inference-job.js";
import type { SessionTracker } from "../fleet/session-tracker.js";
import { isCapacityError, type WorkerClient } from "../fleet/worker-client.js";
import { PoisonGuard } from "./poison-guard.js";
import type { WorkerTable } from "../fleet/worker-table.js";
import { Dispatcher, inputOf, type Dispatched } from "./dispatcher.js";
import { planRequest, type RequestPlan } from "./request-plan.js";
import { KvMove } from "./kv-move.js";

/**
 * One pipeline behind every front door, as a short sequence of named steps (run()):
 * 1. plan (request-plan.ts): resolve the model, refuse a known poison request, estimate the tokens,
 *    charge the client's token rate, refuse what no worker could ever hold;
 * 2. admit (admission/admission-entry.ts): the O(1) check and a first decision, or a wait in the
 *    queue; at capacity a wait and, when every worker answered full, a capacity retry;
 * 3. dispatch (dispatcher.ts): schedule with the configured profile (the prefix index tells which
 *    workers hold the prompt; `x-session-id` is the affinity key), claim the lease, prefill (on
 *    failure: another worker, fresh session id, up to PREFILL_RETRIES), start the decode stream;
 * 4. stream or collect (stream/): the relay or the collector, with stall timeouts and a failover
 *    (stream/failover.ts) that continues the answer elsewhere, never replays it; then the outcome
 *    (the worker's breaker, the prefix index's cache notice).
 * Errors before the stream starts are ServingErrors the front door answers with a status. The
 * steps report to telemetry through the events of telemetry/request-events.ts.
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
  /** One write per event-loop turn for all of this coordinator's relays. */
  private readonly flushes = new FlushBatch();
  /** Requests scheduled so far (the round-robin picker's cursor). */
  private sequence = 0;
  private readonly gate: AdmissionGate;
  private readonly dispatcher: Dispatcher;
  /** Requests on which two workers died: identical ones are refused at once (POISON_TTL_MS). */
  readonly poison: PoisonGuard;

  constructor(private readonly d: PipelineDeps) {
    this.poison = new PoisonGuard({
      ttlMs: d.config.poisonTtlMs, maxEntries: d.config.poisonMaxEntries, clock: d.clock, metrics: d.telemetry.metrics,
    });
    this.gate = new AdmissionGate({ config: d.config, table: d.table, tracker: d.tracker, queue: d.queue, clock: d.clock, caps: d.caps });
    this.dispatcher = new Dispatcher({
      table: d.table, tracker: d.tracker, client: d.client, profile: d.profile, clock: d.clock, rng: d.rng,
      estimator: this.estimator, routes: this.routes, poison: this.poison,
      ...(d.config.kvMove ? { kvMove: new KvMove({ table: d.table, client: d.client, estimator: this.estimator, clock: d.clock }) } : {}),
    });
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

  /** Set on SIGTERM: new requests are refused (503 draining) while the running ones finish. */
  draining = false;

  async start(job: InferenceJob): Promise<StartedInference> {
    if (this.draining) throw new ServingError("draining", "coordinator is shutting down; send the request to another coordinator");
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
        abortUpstream: started.abortUpstream, flushes: this.flushes,
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

  /**
   * The steps of one request before its stream: plan (what it costs, may it try at all), admit and
   * dispatch (with capacity retries), then the started stream with its failover.
   */
  private async run(job: InferenceJob, tel: RequestTelemetry): Promise<StartedInference> {
    const model = this.resolveModel(job.model, job.unknownModel, job.anyNameWhenSingleModel);
    const plan = planRequest(job, model, () => this.sequence++, {
      table: this.d.table, clock: this.d.clock, estimator: this.estimator, rateLimiter: this.d.rateLimiter,
      index: this.d.index, poison: this.poison, snapshot: () => this.snapshot(),
    });
    const { first, queuedMs, exclude } = await this.admitAndDispatch(job, tel, plan);
    return this.startedInference(job, tel, plan, first, queuedMs, exclude);
  }

  /**
   * Admission, then dispatch; when every worker tried answered that it is full though the
   * coordinator's count had room (a session the coordinator already released may still be ending
   * on its worker: its end travels on a closing connection), the request waits a moment and goes
   * through admission again, within the queue's timeout, rather than failing (queue on only).
   */
  private async admitAndDispatch(job: InferenceJob, tel: RequestEvents, plan: RequestPlan): Promise<{ first: Dispatched; queuedMs: number; exclude: Set<string> }> {
    const { config } = this.d;
    for (let round = 0; ; round++) {
      const admitted = await this.admit(job, tel, plan);
      // After a capacity retry the request has waited since it arrived, in the queue or not.
      const queuedMs = round === 0 ? admitted.queuedMs : this.d.clock.now() - plan.arrivedMs;
      // Leaving wakes the next in line, whose own check runs only after this request has claimed its
      // capacity (in dispatch, synchronously up to the first prefill).
      admitted.claimed();
      // Workers this request has tried; a failover skips them too.
      const exclude = new Set<string>();
      try {
        const first = await this.dispatcher.dispatch(job, tel, {
          model: plan.model, tokens: plan.tokens, promptBytes: plan.promptBytes, exclude, lease: undefined, continuation: undefined,
          attempts: config.prefillRetries + 1, prefix: plan.prefix, sequence: plan.sequence, queuedMs, firstDecision: admitted.decision,
          crashes: plan.crashes,
        });
        return { first, queuedMs, exclude };
      } catch (err) {
        if (!isCapacityError(err) || !this.d.queue.enabled || job.signal.aborted) throw err;
        const waitMs = Math.min(CAPACITY_RETRY_MAX_MS, CAPACITY_RETRY_BASE_MS * 2 ** round);
        if (this.d.clock.now() - plan.arrivedMs + waitMs > config.queueTimeoutMs) throw err;
        job.log.info({ reason: err.code, wait_ms: waitMs, round }, "queue.capacity_retry");
        await delay(waitMs, undefined, { signal: job.signal }).catch(() => undefined);
        if (job.signal.aborted) throw new ServingError("client_closed", "client went away", { cause: err });
      }
    }
  }

  /** The admission step (O(1) check, first decision, the queue at capacity), with its span. */
  private async admit(job: InferenceJob, tel: RequestEvents, plan: RequestPlan): Promise<Extract<AdmissionOutcome, { kind: "admitted" }>> {
    const admissionSpan = tel.span("admission");
    let outcome: AdmissionOutcome;
    try {
      outcome = await enterAdmission(this.gate, {
        model: plan.model, tokens: plan.tokens, priority: job.priority ?? 0, clientId: job.clientId, signal: job.signal, log: job.log,
        decide: () => this.dispatcher.decide(job, { model: plan.model, tokens: plan.tokens, exclude: new Set(), prefix: plan.prefix, sequence: plan.sequence }),
        ...(job.onQueued ? { onQueued: job.onQueued } : {}),
      });
    } catch (err) {
      outcome = { kind: "rejected", reason: err as ServingError };
    }
    if (outcome.kind !== "admitted") {
      admissionSpan.setError(outcome.reason instanceof ServingError ? outcome.reason.code : "error");
      admissionSpan.end();
      throw outcome.reason;
    }
    tel.admission(outcome.admission, admissionSpan);
    return outcome;
  }

  /** The started stream: its first worker, and a failover that continues it on another one. */
  private startedInference(job: InferenceJob, tel: RequestTelemetry, plan: RequestPlan, first: Dispatched, queuedMs: number, exclude: Set<string>): StartedInference {
    const { config } = this.d;
    const failover = new Failover<Dispatched>(first, {
      requestId: job.requestId, log: this.d.log, maxFailovers: config.maxFailovers, maxTokens: job.maxTokens,
      constrained: job.sampling.grammar !== undefined || job.sampling.json_schema !== undefined,
      recordFault: (id, kind) => this.d.table.recordFault(id, kind),
      cancel: (w) => void this.d.client.cancel(w.workerUrl, w.sessionId, job.requestId),
      workerDied: (id) => this.poison.workerDied(job, plan.crashes, id),
      continueOn: (relayed, remaining, signal) =>
        // A continuation may go anywhere: the KV the pin was for is on the failed worker.
        this.dispatcher.dispatch({ ...job, maxTokens: remaining, signal, pinWorker: undefined }, tel, {
          model: plan.model, tokens: plan.tokens, promptBytes: plan.promptBytes + Buffer.byteLength(relayed.text), exclude, lease: first.lease,
          continuation: relayed.text, attempts: config.prefillRetries + 1,
          prefix: this.d.index.match(canonicalText(inputOf(job, relayed.text))), sequence: plan.sequence, queuedMs: 0, firstDecision: undefined,
          crashes: plan.crashes,
        }),
    });
    return {
      model: plan.model, sessionId: first.sessionId, workerId: first.workerId, workerUrl: first.workerUrl, lease: first.lease, prefill: first.prefill,
      upstream: first.upstream, decision: first.decision, attempts: first.attempts, telemetry: tel, prefix: plan.prefix, queuedMs,
      ...(first.kvMoved !== undefined ? { kvMoved: first.kvMoved } : {}),
      abortUpstream: () => failover.worker.abort.abort(),
      currentWorkerId: () => failover.worker.workerId,
      failover: (failure, relayed, signal) => failover.continue(failure, relayed, signal),
    };
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
}

/**
 * A request that every worker refused as full while the coordinator counted room goes through
 * admission again after this wait (ms), doubling each round up to the cap, within QUEUE_TIMEOUT_MS.
 */
const CAPACITY_RETRY_BASE_MS = 10;
const CAPACITY_RETRY_MAX_MS = 200;

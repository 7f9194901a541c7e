import { randomUUID } from "node:crypto";
import type { Clock } from "../../common/clock.js";
import type { Rng } from "../../common/rng.js";
import { ServingError } from "../../protocol/serving-error.js";
import type { PromptInput } from "../../protocol/prefix-blocks.js";
import type { PrefillRequest, PrefillResponse } from "../../protocol/worker-api.js";
import { noCandidate } from "../admission/admission-gate.js";
import type { PromptTokenEstimator } from "../admission/prompt-token-estimator.js";
import { candidatesOf } from "../fleet/candidate-snapshot.js";
import type { FaultKind } from "../fleet/circuit-breaker.js";
import type { PrefixMatch } from "../fleet/prefix-index.js";
import type { SessionLease, SessionTracker } from "../fleet/session-tracker.js";
import { WorkerFault, isCapacityError, type WorkerClient } from "../fleet/worker-client.js";
import type { WorkerTable } from "../fleet/worker-table.js";
import { schedule } from "../scheduler/schedule.js";
import type { Candidate, Decision, Profile } from "../scheduler/types.js";
import { logDecision, type RouteLog } from "../telemetry/route-log.js";
import type { InferenceJob } from "./inference-job.js";
import type { PoisonGuard, RequestCrashes } from "./poison-guard.js";
import type { KvMove, KvMoved, MoveSource } from "./kv-move.js";
import type { Logger } from "../../common/logger.js";
import type { RequestEvents } from "../telemetry/request-events.js";
import type { Upstream } from "../stream/upstream.js";

/**
 * The dispatch step: schedule, claim (the session lease), prefill and start the decode stream (one
 * exchange, `/worker/generate`; prefill then decode toward a worker without it), on one worker
 * after another until one answers (PREFILL_RETRIES), classifying each failure once: the
 * request's own fault ends it, a full worker is capacity (503), anything else a worker fault that
 * feeds its breaker. A failover dispatches a continuation through the same step.
 */
export interface DispatcherDeps {
  table: WorkerTable;
  tracker: SessionTracker;
  client: WorkerClient;
  profile: Profile;
  clock: Clock;
  rng: Rng;
  estimator: PromptTokenEstimator;
  routes: RouteLog;
  poison: PoisonGuard;
  /** Moves a conversation's KV off a worker that cannot take its turn (kv-move.ts); absent: never. */
  kvMove?: KvMove;
}

export class Dispatcher {
  constructor(private readonly d: DispatcherDeps) {}

  /**
   * Schedules and prefills on one worker after another (never one in `exclude`) until one answers,
   * then starts its decode stream. With a continuation, the prompt is followed by the text a failed
   * worker already produced (for chat: as the start of the assistant's answer), and the lease moves.
   */
  async dispatch(job: InferenceJob, tel: RequestEvents, plan: DispatchPlan): Promise<Dispatched> {
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
      // Only a new turn of a conversation whose KV another worker holds looks further (kv-move.ts).
      const moveFrom = conversation === undefined || continuation !== undefined || job.pinWorker !== undefined
        ? undefined : this.d.kvMove?.sourceFor(decision, plan.prefix);
      const sessionId = randomUUID();
      const lease = plan.lease ?? tracker.open(job.requestId, w.id, tokens * w.kvBytesPerToken);
      const previousWorker = lease.workerId;
      lease.moveTo(w.id);
      table.dispatched(w.id);
      const upstreamAbort = new AbortController();
      const onClientAbort = () => upstreamAbort.abort();
      job.signal.addEventListener("abort", onClientAbort, { once: true });
      let prefilled = false;
      let upstream: Upstream | undefined;
      // After the claim, before the prefill's span (its time is the move's); never throws.
      const kvMoved = moveFrom === undefined ? undefined : await this.moveKv(job, model, conversation!, moveFrom, w, wlog, tel);
      const prefillSpan = tel.prefillStarted(w.id, sessionId);
      const prefillStartMs = this.d.clock.now();
      try {
        if (job.signal.aborted) throw new WorkerFault("client went away", "aborted");
        const body: PrefillRequest = {
          session_id: sessionId, model: job.model, max_tokens: job.maxTokens, sampling: job.sampling,
          ...promptOf(job, continuation),
          ...(conversation !== undefined ? { conversation_id: conversation } : {}),
          ...(job.tools !== undefined ? { tools: toolsOf(job, continuation) } : {}),
        };
        const call = { requestId: job.requestId, signal: upstreamAbort.signal, headers: tel.traceHeaders(prefillSpan) };
        // One exchange: its acknowledgement is the prefill's answer and the decode stream follows in the same response.
        const generated = client.generates(w.url) ? await client.generate(w.url, body, { ...call, headers: tel.exchangeTraceHeaders(prefillSpan) }) : undefined;
        const prefill = generated?.prefill ?? await client.prefill(w.url, body, call);
        upstream = generated?.upstream;
        prefilled = true;
        tel.prefillDone(prefillSpan, prefill, prefillStartMs);
        table.recordSuccess(w.id);
        lease.trueUp(prefill.kv_cache_bytes);
        if (continuation === undefined) this.d.estimator.observe(model, promptBytes, prefill.prompt_tokens);
        const decodeSpan = tel.decodeStarted(w.id, sessionId);
        upstream ??= await client.decode(w.url, sessionId, job.maxTokens, {
          requestId: job.requestId, signal: upstreamAbort.signal, headers: tel.traceHeaders(decodeSpan),
        });
        job.signal.removeEventListener("abort", onClientAbort);
        this.d.routes.record(this.d.clock.wallNow(), job.requestId, decision, plan.prefix, plan.queuedMs, attempt + 1, prefill.cached_tokens, prefill.prompt_tokens);
        wlog.debug({ session_id: sessionId, prompt_tokens: prefill.prompt_tokens, cached_tokens: prefill.cached_tokens }, "prefill.done");
        return {
          sessionId, workerId: w.id, workerUrl: w.url, lease, prefill, upstream, decision, attempts: attempt + 1, abort: upstreamAbort,
          ...(kvMoved !== undefined ? { kvMoved } : {}),
        };
      } catch (err) {
        if (prefilled) tel.decodeFailed(w.id, (err as Error).message);
        else tel.prefillFailed(prefillSpan, w.id, (err as Error).message);
        job.signal.removeEventListener("abort", onClientAbort);
        if (plan.lease === undefined) lease.release();
        else lease.moveTo(previousWorker);
        // A generate exchange closed cancels its session; a prefilled one of the two calls is cancelled explicitly.
        if (upstream !== undefined) upstream.destroy();
        else if (prefilled) void client.cancel(w.url, sessionId, job.requestId);
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
          const poison = this.d.poison.workerDied(job, plan.crashes, w.id);
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

  /** The move of the conversation's KV to the pick, in its own span. */
  private async moveKv(job: InferenceJob, model: string, conversationId: string, src: MoveSource, pick: Candidate, log: Logger, tel: RequestEvents): Promise<KvMoved | undefined> {
    const span = tel.span("kv_move");
    span.setAttribute("from", src.id);
    try {
      const moved = await this.d.kvMove!.move({ model, conversationId, requestId: job.requestId, signal: job.signal, log }, src, pick);
      span.setAttribute("moved_tokens", moved?.tokens ?? 0);
      return moved;
    } finally {
      span.end();
    }
  }

  /** The profile's decision over the current snapshot, for a request (its conversation, prompt match). */
  decide(job: InferenceJob, p: Pick<DispatchPlan, "model" | "tokens" | "exclude" | "prefix" | "sequence">): Decision {
    const snapshot = candidatesOf(this.d.table, this.d.tracker, this.d.clock.now());
    const pin = job.pinWorker;
    const exclude = pin === undefined ? p.exclude : new Set([...p.exclude, ...snapshot.filter((c) => c.id !== pin).map((c) => c.id)]);
    return schedule(
      this.d.profile, snapshot,
      { model: p.model, tokens: p.tokens, exclude, affinityKey: job.conversationId, prefix: p.prefix },
      { nowMs: this.d.clock.now(), rng: this.d.rng, sequence: p.sequence },
    );
  }
}

export interface DispatchPlan {
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

export interface Dispatched {
  sessionId: string;
  workerId: string;
  workerUrl: string;
  lease: SessionLease;
  prefill: PrefillResponse;
  upstream: Upstream;
  decision: Extract<Decision, { ok: true }>;
  attempts: number;
  abort: AbortController;
  /** The conversation's KV moved here from a worker that could not take the turn. */
  kvMoved?: KvMoved;
}

/** The prompt fields of a prefill: the job's, continued by the text already produced. */
export function promptOf(job: InferenceJob, continuation: string | undefined): Pick<PrefillRequest, "prompt" | "messages"> {
  if (job.messages !== undefined) {
    return { messages: continuation === undefined ? job.messages : [...job.messages, { role: "assistant", content: continuation }] };
  }
  return { prompt: continuation === undefined ? job.prompt! : job.prompt! + continuation };
}

/** A chat's tools, the history continued by the text already produced (as `promptOf` continues the messages). */
function toolsOf(job: InferenceJob, continuation: string | undefined): NonNullable<InferenceJob["tools"]> {
  const t = job.tools!;
  return continuation === undefined ? t : { ...t, history: [...t.history, { role: "assistant", content: continuation }] };
}

/** The same, as the prefix index's input. */
export function inputOf(job: InferenceJob, continuation: string | undefined): PromptInput {
  const p = promptOf(job, continuation);
  return p.messages !== undefined ? { messages: p.messages } : { prompt: p.prompt! };
}

import { httpStatusOf, toServingError } from "../../protocol/error-mapping.js";
import type { RateWindow } from "../../common/rate-window.js";
import { SpanKind, type Span } from "../../common/tracer.js";
import { DECODE_TRACEPARENT_HEADER, formatTraceparent, parseTraceparent } from "../../protocol/traceparent.js";
import type { PrefillResponse } from "../../protocol/worker-api.js";
import type { AdmissionDecision } from "../admission/admission.js";
import type { CoordinatorTelemetry } from "./coordinator-telemetry.js";
import { bump } from "./coordinator-metrics.js";
import type { RequestRecord } from "./recent-requests.js";
import type { RelayResult } from "../stream/relay.js";
import type { CollectResult } from "../stream/stream-collector.js";
import type { Decision } from "../scheduler/types.js";
import type { RequestEvents } from "./request-events.js";

/**
 * One request as the coordinator observes it, from arrival to the stream's end: its timeline
 * record (dashboard), its spans (request → admission → schedule → prefill → decode → stream, the
 * worker calls carrying `traceparent`), and its share of the metrics. The pipeline calls one method
 * per step; the relay calls the `on…` hooks, which are bound once per request and allocate nothing
 * per write.
 */
export interface TelemetryJob {
  requestId: string;
  model: string;
  /** Undefined: the rest of the context. */
  maxTokens: number | undefined;
  /** The client's `traceparent`, if it sent one: our spans join its trace. */
  traceparent?: string;
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

export class RequestTelemetry implements RequestEvents {
  readonly record: RequestRecord;
  private readonly startMs: number;
  private readonly root: Span;
  private readonly clientTraceparent: string | undefined;
  private decodeSpan: Span | undefined;
  /** The id the next decode span takes, once a worker was told of it (exchangeTraceHeaders). */
  private decodeSpanId: string | undefined;
  private streamSpan: Span | undefined;
  private workerRate: RateWindow | undefined;
  private bufferTokens = 1;
  private lastWriteMs = 0;
  private streaming = false;
  private ended = false;

  constructor(private readonly t: CoordinatorTelemetry, job: TelemetryJob) {
    const now = t.clock.now();
    this.startMs = now;
    this.record = t.recent.open(job.requestId, job.model, job.maxTokens, t.clock.wallNow(), now);
    this.record.add("arrived", now);
    const parent = parseTraceparent(job.traceparent);
    this.clientTraceparent = parent !== undefined ? job.traceparent : undefined;
    // With tracing off the span is the shared no-op one: its attributes are not even built.
    this.root = !t.tracer.enabled ? t.tracer.startSpan("request") : t.tracer.startSpan("request", {
      parent, kind: SpanKind.server,
      attributes: { "request.id": job.requestId, "request.model": job.model, ...(job.maxTokens !== undefined ? { "request.max_tokens": job.maxTokens } : {}) },
    });
  }

  /** A child span of the request (admission, schedule). */
  span(name: string): Span {
    return this.t.tracer.startSpan(name, { parent: this.root });
  }

  /** Headers that carry the trace to a worker call made under `span`. */
  traceHeaders(span: Span): Record<string, string> | undefined {
    const tp = span.traceparent() ?? this.clientTraceparent;
    return tp === undefined ? undefined : { traceparent: tp };
  }

  exchangeTraceHeaders(span: Span): Record<string, string> | undefined {
    const headers = this.traceHeaders(span);
    const ctx = span.context;
    if (headers === undefined || ctx === undefined) return headers;
    this.decodeSpanId = this.t.tracer.newSpanId();
    return { ...headers, [DECODE_TRACEPARENT_HEADER]: formatTraceparent({ ...ctx, spanId: this.decodeSpanId }) };
  }

  admission(d: AdmissionDecision, span: Span): void {
    const now = this.t.clock.now();
    this.t.metrics.queueTime.observe((now - this.startMs) / 1000);
    if (d.admitted) {
      this.t.metrics.admitted++;
      this.record.add("admitted", now, { kv_estimate_bytes: d.kvEstimateBytes });
    } else {
      span.setError(d.reason);
    }
    span.setAttribute("admitted", d.admitted);
    span.end();
  }

  scheduled(d: Decision, attempt: number, span: Span): void {
    const now = this.t.clock.now();
    if (attempt > 0) this.t.metrics.retries++;
    if (!d.ok) {
      this.record.add("no_candidate", now, { considered: d.considered, dropped: d.dropped });
      span.setError("no candidate");
      span.end();
      return;
    }
    const w = d.pick.candidate.id;
    this.t.metrics.selected(w, d.profile);
    this.record.state = "prefill";
    this.record.workerId = w;
    this.record.add("scheduled", now, {
      worker_id: w, profile: d.profile, attempt, score: round4(d.pick.total), scores: d.pick.scores,
      runner_up: d.runnerUp ? { worker_id: d.runnerUp.candidate.id, score: round4(d.runnerUp.total) } : null,
      considered: d.considered, dropped: d.dropped,
    });
    span.setAttribute("worker.id", w);
    span.setAttribute("score", round4(d.pick.total));
    if (d.runnerUp) span.setAttribute("runner_up", `${d.runnerUp.candidate.id}:${round4(d.runnerUp.total)}`);
    span.end();
  }

  prefillStarted(workerId: string, sessionId: string): Span {
    this.record.sessionId = sessionId;
    this.record.add("prefill_sent", this.t.clock.now(), { worker_id: workerId, session_id: sessionId });
    if (!this.t.tracer.enabled) return this.t.tracer.startSpan("prefill");
    return this.t.tracer.startSpan("prefill", {
      parent: this.root, kind: SpanKind.client, attributes: { "worker.id": workerId, "session.id": sessionId },
    });
  }

  prefillDone(span: Span, p: PrefillResponse, startedMs: number): void {
    const now = this.t.clock.now();
    this.t.metrics.prefill.observe((now - startedMs) / 1000);
    this.t.metrics.promptTokens += p.prompt_tokens;
    this.record.add("prefill_done", now, { prompt_tokens: p.prompt_tokens, cached_tokens: p.cached_tokens, kv_bytes: p.kv_cache_bytes });
    span.setAttribute("prompt_tokens", p.prompt_tokens);
    span.setAttribute("cached_tokens", p.cached_tokens);
    span.end();
  }

  prefillFailed(span: Span, workerId: string, message: string): void {
    this.record.add("prefill_failed", this.t.clock.now(), { worker_id: workerId, error: message });
    span.setError(message);
    span.end();
  }

  /** The decode request is about to go out; its span lasts until the stream ends. */
  decodeStarted(workerId: string, sessionId: string): Span {
    if (!this.t.tracer.enabled) return (this.decodeSpan = this.t.tracer.startSpan("decode"));
    const spanId = this.decodeSpanId;
    this.decodeSpanId = undefined;
    this.decodeSpan = this.t.tracer.startSpan("decode", {
      parent: this.root, kind: SpanKind.client, attributes: { "worker.id": workerId, "session.id": sessionId },
      ...(spanId !== undefined ? { spanId } : {}),
    });
    return this.decodeSpan;
  }

  /** The decode request failed before streaming (the pipeline may retry elsewhere). */
  decodeFailed(workerId: string, message: string): void {
    this.record.add("decode_failed", this.t.clock.now(), { worker_id: workerId, error: message });
    this.decodeSpan?.setError(message);
    this.decodeSpan?.end();
    this.decodeSpan = undefined;
  }

  /** Failed before any token: a refusal for capacity (503) or rate (429), or another error. */
  failed(err: unknown, clientGone: boolean): void {
    if (this.ended) return;
    this.ended = true;
    const now = this.t.clock.now();
    const code = clientGone ? "client_closed" : toServingError(err).code;
    const status = clientGone ? httpStatusOf("client_closed") : httpStatusOf(toServingError(err).code);
    const refused = !clientGone && (status === 503 || status === 429);
    if (refused) {
      bump(this.t.metrics.rejected, code);
      this.t.series.rejected(now);
    } else {
      bump(this.t.metrics.errors, code);
    }
    this.record.state = refused ? "rejected" : "failed";
    this.record.outcome = code;
    this.record.add(refused ? "rejected" : "failed", now, { code, message: (err as Error)?.message });
    this.decodeSpan?.setError(code);
    this.decodeSpan?.end();
    this.root.setError(code);
    this.root.setAttribute("outcome", code);
    this.root.end();
  }

  /** The relay is about to start: the stream counts as active until `end`. */
  streamStarted(workerId: string, bufferTokens: number): void {
    this.streaming = true;
    this.bufferTokens = Math.max(1, bufferTokens);
    this.workerRate = this.t.workerRate(workerId);
    this.t.metrics.streamsActive++;
    this.record.state = "streaming";
  }

  readonly onFirstToken = (): void => {
    const now = this.t.clock.now();
    const ttft = (now - this.startMs) / 1000;
    this.t.metrics.ttft.observe(ttft);
    this.t.series.ttft(ttft, now);
    this.record.add("first_token", now);
    this.streamSpan = this.t.tracer.startSpan("stream", { parent: this.root });
  };

  /** One client write of `n` tokens. */
  readonly onTokens = (n: number): void => {
    const now = this.t.clock.now();
    const m = this.t.metrics;
    m.generationTokens += n;
    m.bufferFill.observe(n / this.bufferTokens);
    this.t.series.tokens(n, now);
    this.workerRate?.add(n, now);
    this.record.tokens += n;
    // The first write's tokens arrived together with the first token (TTFT); later writes spread
    // the gap since the previous write over their tokens.
    if (this.lastWriteMs !== 0) {
      const gap = (now - this.lastWriteMs) / 1000 / n;
      m.itl.observeMany(gap, n);
      this.t.series.itl(gap, n, now);
    }
    this.lastWriteMs = now;
  };

  readonly onSlowClient = (): void => {
    this.t.metrics.slowClients++;
    this.record.add("slow_client", this.t.clock.now());
  };

  readonly onWriteWait = (ms: number): void => {
    this.t.metrics.writeWait.observe(ms / 1000);
  };

  /**
   * A request answered in one body is over: its tokens count as generated (no client write, so no
   * TTFT or inter-token latency: the client saw nothing before the end).
   */
  collected(result: CollectResult | undefined): void {
    if (result !== undefined && result.tokens > 0 && !this.ended) {
      const now = this.t.clock.now();
      this.t.metrics.generationTokens += result.tokens;
      this.t.series.tokens(result.tokens, now);
      this.workerRate?.add(result.tokens, now);
      this.record.tokens += result.tokens;
    }
    this.end(result === undefined ? undefined : { termination: result.termination, failovers: result.failovers, tokens: result.tokens, final: result.final, error: result.error });
  }

  /** The stream is over (`result` undefined when the relay itself threw). */
  end(result: RelayResult | undefined): void {
    if (this.ended) return;
    this.ended = true;
    const now = this.t.clock.now();
    const m = this.t.metrics;
    if (this.streaming) m.streamsActive--;
    const termination = result?.termination ?? "worker_error";
    bump(m.terminations, termination);
    m.e2e.observe((now - this.startMs) / 1000);
    this.t.series.finished(now);
    this.record.state = termination === "complete" ? "done" : "failed";
    this.record.outcome = termination;
    this.record.add("end", now, {
      termination, tokens_received: result?.tokens ?? 0, tokens_written: this.record.tokens,
      ...(result?.final ? { finish_reason: result.final.reason } : {}),
      ...(result?.error ? { error: result.error.code, message: result.error.message } : {}),
    });
    for (const s of [this.streamSpan, this.decodeSpan]) {
      if (s === undefined) continue;
      s.setAttribute("completion_tokens", result?.tokens ?? 0);
      if (termination !== "complete") s.setError(termination);
      s.end();
    }
    this.root.setAttribute("termination", termination);
    this.root.setAttribute("worker.id", this.record.workerId ?? "");
    this.root.setAttribute("completion_tokens", result?.tokens ?? 0);
    if (termination !== "complete") this.root.setError(termination);
    this.root.end();
  }
}

import type { Span } from "../../common/tracer.js";
import type { PrefillResponse } from "../../protocol/worker-api.js";
import type { AdmissionDecision } from "../admission/admission.js";
import type { Decision } from "../scheduler/types.js";

/**
 * What the steps of one request report as they happen, and all they know of telemetry: the steps
 * emit these events; request-telemetry.ts listens (the dashboard's timeline, the spans,
 * the metrics). A step that needs its worker call traced opens a span here and passes its
 * `traceHeaders` on; nothing else about metrics or tracing reaches the steps.
 */
export interface RequestEvents {
  /** A step's span (admission, schedule), ended by the event that closes the step. */
  span(name: string): Span;
  traceHeaders(span: Span): Record<string, string> | undefined;
  /**
   * The headers of a one-exchange call (prefill, then the decode stream in the same response):
   * `span` (the prefill's) as its traceparent, and `x-decode-traceparent` naming the decode span
   * that `decodeStarted` opens next, so that the worker's decode span is that span's child.
   */
  exchangeTraceHeaders(span: Span): Record<string, string> | undefined;
  admission(d: AdmissionDecision, span: Span): void;
  scheduled(d: Decision, attempt: number, span: Span): void;
  prefillStarted(workerId: string, sessionId: string): Span;
  prefillDone(span: Span, p: PrefillResponse, startedMs: number): void;
  prefillFailed(span: Span, workerId: string, message: string): void;
  decodeStarted(workerId: string, sessionId: string): Span;
  decodeFailed(workerId: string, message: string): void;
}

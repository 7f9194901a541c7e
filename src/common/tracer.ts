import { randomBytes } from "node:crypto";
import { formatTraceparent, type TraceContext } from "../protocol/traceparent.js";
import type { Rng } from "./rng.js";

/**
 * A small OpenTelemetry-shaped tracer: spans with explicit parents (no async context magic: the
 * request's code passes its spans along), parent-based sampling, and a sink that exports finished
 * spans (OTLP/HTTP, see otlp-exporter.ts). With no sink, `startSpan` returns one shared no-op span:
 * tracing off costs a branch and allocates nothing.
 */
export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

/** OTLP span kinds. */
export const SpanKind = { internal: 1, server: 2, client: 3 } as const;
export type SpanKindValue = (typeof SpanKind)[keyof typeof SpanKind];

export interface FinishedSpan {
  readonly name: string;
  readonly kind: SpanKindValue;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  /** Epoch milliseconds (fractional). */
  readonly startMs: number;
  readonly endMs: number;
  readonly attributes: Attributes;
  readonly events: readonly { name: string; timeMs: number; attributes: Attributes | undefined }[];
  readonly error: string | undefined;
}

export interface SpanSink {
  export(span: FinishedSpan): void;
}

export interface Span {
  /** Undefined for the no-op span. */
  readonly context: TraceContext | undefined;
  setAttribute(key: string, value: AttributeValue): void;
  addEvent(name: string, attributes?: Attributes): void;
  /** Marks the span failed (OTLP status ERROR). */
  setError(message: string): void;
  /** Ends the span once; later calls do nothing. */
  end(endMs?: number): void;
  /** The header that makes a downstream span this span's child. */
  traceparent(): string | undefined;
}

export interface SpanOptions {
  parent?: Span | TraceContext;
  kind?: SpanKindValue;
  /** Epoch ms; default now. */
  startMs?: number;
  attributes?: Attributes;
  /** An id chosen before the span starts (`newSpanId`), when a child had to be told of it first. */
  spanId?: string;
}

const NOOP_SPAN: Span = {
  context: undefined,
  setAttribute() {},
  addEvent() {},
  setError() {},
  end() {},
  traceparent: () => undefined,
};

export const wallClockMs = (): number => performance.timeOrigin + performance.now();

class RecordedSpan implements Span {
  private readonly events: { name: string; timeMs: number; attributes: Attributes | undefined }[] = [];
  private error: string | undefined;
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    readonly context: TraceContext,
    private readonly name: string,
    private readonly kind: SpanKindValue,
    private readonly parentSpanId: string | undefined,
    private readonly startMs: number,
    private readonly attributes: Attributes,
  ) {}

  setAttribute(key: string, value: AttributeValue): void {
    if (this.context.sampled) this.attributes[key] = value;
  }

  addEvent(name: string, attributes?: Attributes): void {
    if (this.context.sampled && this.events.length < 64) this.events.push({ name, timeMs: this.tracer.now(), attributes });
  }

  setError(message: string): void {
    this.error = message;
  }

  end(endMs?: number): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.context.sampled) return;
    this.tracer.sink!.export({
      name: this.name, kind: this.kind, traceId: this.context.traceId, spanId: this.context.spanId,
      parentSpanId: this.parentSpanId, startMs: this.startMs, endMs: endMs ?? this.tracer.now(),
      attributes: this.attributes, events: this.events, error: this.error,
    });
  }

  traceparent(): string {
    return formatTraceparent(this.context);
  }
}

export interface TracerOptions {
  /** Where finished spans go; none turns tracing off. */
  sink?: SpanSink;
  /** Share of new traces recorded (0..1); a trace started upstream follows its sampled flag. */
  sampleRatio?: number;
  rng?: Rng;
  now?: () => number;
}

export class Tracer {
  readonly sink: SpanSink | undefined;
  readonly now: () => number;
  private readonly ratio: number;
  private readonly random: () => number;

  constructor(o: TracerOptions = {}) {
    this.sink = o.sink;
    this.now = o.now ?? wallClockMs;
    this.ratio = o.sampleRatio ?? 1;
    this.random = o.rng ? () => o.rng!.next() : Math.random;
  }

  get enabled(): boolean {
    return this.sink !== undefined;
  }

  /** A fresh span id (16 hex digits). */
  newSpanId(): string {
    return randomBytes(8).toString("hex");
  }

  startSpan(name: string, o: SpanOptions = {}): Span {
    if (this.sink === undefined) return NOOP_SPAN;
    const parent = o.parent === undefined ? undefined : "setAttribute" in o.parent ? o.parent.context : o.parent;
    const traceId = parent?.traceId ?? randomBytes(16).toString("hex");
    const sampled = parent !== undefined ? parent.sampled : this.random() < this.ratio;
    const context: TraceContext = { traceId, spanId: o.spanId ?? this.newSpanId(), sampled };
    return new RecordedSpan(this, context, name, o.kind ?? SpanKind.internal, parent?.spanId, o.startMs ?? this.now(), { ...o.attributes });
  }
}

export const disabledTracer = new Tracer();

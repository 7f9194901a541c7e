import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import type { Logger } from "./logger.js";
import type { Attributes, FinishedSpan } from "./tracer.js";

/**
 * Exports finished spans over OTLP/HTTP in its JSON encoding (POST <endpoint>/v1/traces) through
 * OpenTelemetry's maintained exporter (@opentelemetry/exporter-trace-otlp-http: the encoding,
 * collector headers for auth, gzip, retries with backoff on 429/502/503/504 and refused
 * connections, within EXPORT_TIMEOUT_MS a batch). Batching stays here: a flush every second
 * (FLUSH_INTERVAL_MS) or as soon as a batch is full (512 spans); the queue is bounded (2048 spans),
 * past that spans are dropped and counted, so a collector that is down costs memory once and never
 * blocks a request. Our tracer stays (explicit parents, no async context); its spans are handed
 * over as the SDK's ReadableSpan.
 */
/** The SDK's span type, as its exporter takes it (from @opentelemetry/sdk-trace, a dependency of the exporter). */
type ReadableSpan = Parameters<OTLPTraceExporter["export"]>[0][number];

const FLUSH_INTERVAL_MS = 1000;
const MAX_BATCH = 512;
const MAX_QUEUE = 2048;
const EXPORT_TIMEOUT_MS = 10_000;

export interface OtlpExporterOptions {
  /** Base URL (OTEL_EXPORTER_OTLP_ENDPOINT), or the full URL ending in /v1/traces. */
  endpoint: string;
  serviceName: string;
  /** Extra resource attributes (service.instance.id, …). */
  resource?: Attributes;
  /** Sent with every export (a collector's auth token). */
  headers?: Readonly<Record<string, string>>;
  compression?: "none" | "gzip";
  log: Logger;
}

export class OtlpExporter {
  readonly url: string;
  private queue: FinishedSpan[] = [];
  private inflight: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly otlp: OTLPTraceExporter;
  private readonly resource: Resource;
  private failing = false;
  exported = 0;
  dropped = 0;
  failed = 0;

  constructor(private readonly o: OtlpExporterOptions) {
    const base = o.endpoint.replace(/\/+$/, "");
    this.url = base.endsWith("/v1/traces") ? base : `${base}/v1/traces`;
    this.otlp = new OTLPTraceExporter({
      url: this.url, headers: { ...o.headers }, compression: o.compression ?? "none", timeoutMillis: EXPORT_TIMEOUT_MS, concurrencyLimit: 1,
    } as ConstructorParameters<typeof OTLPTraceExporter>[0]);
    this.resource = resourceFromAttributes({ "service.name": o.serviceName, ...o.resource });
    this.timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /** Spans waiting to be sent. */
  get queued(): number {
    return this.queue.length;
  }

  export(span: FinishedSpan): void {
    if (this.queue.length >= MAX_QUEUE) {
      this.dropped++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= MAX_BATCH && this.inflight === undefined) void this.flush();
  }

  /**
   * Sends what is queued, a batch at a time, until the queue is empty (spans added meanwhile
   * included) or a send failed. A call while sending joins the running loop.
   */
  flush(): Promise<void> {
    // `finally` runs as a later microtask, so even a loop with nothing to send clears this after
    // it was set.
    this.inflight ??= this.sendQueued().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async sendQueued(): Promise<void> {
    while (this.queue.length > 0) {
      await this.send(this.queue.splice(0, MAX_BATCH));
      if (this.failing) return;
    }
  }

  async shutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    await this.otlp.shutdown();
  }

  private async send(batch: FinishedSpan[]): Promise<void> {
    const error = await new Promise<Error | undefined>((resolve) =>
      this.otlp.export(batch.map((s) => toReadableSpan(s, this.resource)), (r) => resolve(r.code === 0 ? undefined : (r.error ?? new Error("export failed")))),
    );
    if (error === undefined) {
      this.exported += batch.length;
      if (this.failing) this.o.log.info({ url: this.url }, "trace.export_recovered");
      this.failing = false;
      return;
    }
    this.failed += batch.length;
    // One line when exports start failing, not one per batch.
    if (!this.failing) this.o.log.warn({ url: this.url, err: error.message, spans: batch.length }, "trace.export_failed");
    this.failing = true;
  }
}

/** Epoch ms (fractional) → OpenTelemetry's [seconds, nanoseconds], exact to the nanosecond. */
export function hrTime(ms: number): [number, number] {
  const whole = Math.floor(ms);
  return [Math.floor(whole / 1000), (whole % 1000) * 1_000_000 + Math.round((ms - whole) * 1e6)];
}

const TRACE_FLAGS_SAMPLED = 1;

/** Our finished span as the SDK's ReadableSpan (what its exporters read). */
export function toReadableSpan(s: FinishedSpan, resource: Resource): ReadableSpan {
  const start = hrTime(s.startMs);
  const endMs = Math.max(s.startMs, s.endMs);
  return {
    name: s.name,
    // OTLP numbers kinds from 1 (internal); the API's SpanKind from 0.
    kind: s.kind - 1,
    spanContext: () => ({ traceId: s.traceId, spanId: s.spanId, traceFlags: TRACE_FLAGS_SAMPLED }),
    parentSpanContext: s.parentSpanId === undefined ? undefined : { traceId: s.traceId, spanId: s.parentSpanId, traceFlags: TRACE_FLAGS_SAMPLED },
    startTime: start,
    endTime: hrTime(endMs),
    duration: hrTime(endMs - s.startMs),
    ended: true,
    status: s.error !== undefined ? { code: 2, message: s.error } : { code: 0 },
    attributes: s.attributes,
    links: [],
    events: s.events.map((e) => ({ name: e.name, time: hrTime(e.timeMs), attributes: e.attributes ?? {} })),
    resource,
    instrumentationScope: { name: "inference-engine" },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

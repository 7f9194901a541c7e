import { request } from "undici";
import type { Logger } from "./logger.js";
import type { Attributes, FinishedSpan, SpanSink } from "./tracer.js";

/**
 * Exports finished spans over OTLP/HTTP in its JSON encoding (POST <endpoint>/v1/traces,
 * `application/json`), batched: a flush every second (FLUSH_INTERVAL_MS) or as soon as a batch is
 * full (512 spans). The queue is bounded (2048 spans); past that spans are dropped and counted, so a
 * collector that is down costs memory once and never blocks a request. The JSON encoding is the
 * stable OTLP 1.x mapping (ids as lowercase hex, times as decimal strings of Unix nanoseconds),
 * which every OpenTelemetry collector accepts; it needs no SDK.
 */
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
  log: Logger;
}

export class OtlpExporter implements SpanSink {
  readonly url: string;
  private queue: FinishedSpan[] = [];
  private inflight: Promise<void> | undefined;
  private readonly timer: NodeJS.Timeout;
  private failing = false;
  exported = 0;
  dropped = 0;
  failed = 0;

  constructor(private readonly o: OtlpExporterOptions) {
    const base = o.endpoint.replace(/\/+$/, "");
    this.url = base.endsWith("/v1/traces") ? base : `${base}/v1/traces`;
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
  }

  private async send(batch: FinishedSpan[]): Promise<void> {
    try {
      const res = await request(this.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(encodeOtlpTraces(batch, this.o.serviceName, this.o.resource)),
        headersTimeout: EXPORT_TIMEOUT_MS,
        bodyTimeout: EXPORT_TIMEOUT_MS,
      });
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`collector answered ${res.statusCode}`);
      this.exported += batch.length;
      if (this.failing) this.o.log.info({ url: this.url }, "trace.export_recovered");
      this.failing = false;
    } catch (err) {
      this.failed += batch.length;
      // One line when exports start failing, not one per batch.
      if (!this.failing) this.o.log.warn({ url: this.url, err: (err as Error).message, spans: batch.length }, "trace.export_failed");
      this.failing = true;
    }
  }
}

/** The OTLP/JSON `ExportTraceServiceRequest` for a batch of spans of one service. */
export function encodeOtlpTraces(spans: readonly FinishedSpan[], serviceName: string, resource: Attributes = {}): unknown {
  return {
    resourceSpans: [
      {
        resource: { attributes: encodeAttributes({ "service.name": serviceName, ...resource }) },
        scopeSpans: [
          {
            scope: { name: "inference-engine" },
            spans: spans.map((s) => ({
              traceId: s.traceId,
              spanId: s.spanId,
              ...(s.parentSpanId !== undefined ? { parentSpanId: s.parentSpanId } : {}),
              name: s.name,
              kind: s.kind,
              startTimeUnixNano: unixNanos(s.startMs),
              endTimeUnixNano: unixNanos(Math.max(s.startMs, s.endMs)),
              attributes: encodeAttributes(s.attributes),
              events: s.events.map((e) => ({ timeUnixNano: unixNanos(e.timeMs), name: e.name, attributes: encodeAttributes(e.attributes ?? {}) })),
              status: s.error !== undefined ? { code: 2, message: s.error } : { code: 0 },
            })),
          },
        ],
      },
    ],
  };
}

function encodeAttributes(a: Attributes): { key: string; value: Record<string, unknown> }[] {
  return Object.entries(a).map(([key, v]) => ({
    key,
    value: typeof v === "string" ? { stringValue: v } : typeof v === "boolean" ? { boolValue: v } : Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v },
  }));
}

/** Epoch ms (fractional) → decimal string of nanoseconds, exact past 2^53. */
export function unixNanos(ms: number): string {
  const whole = Math.floor(ms);
  const fracNs = Math.round((ms - whole) * 1e6);
  return (BigInt(whole) * 1_000_000n + BigInt(fracNs)).toString();
}

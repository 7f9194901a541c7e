import { parseOtlpHeaders } from "./config.js";
import type { Logger } from "./logger.js";
import { OtlpExporter } from "./otlp-exporter.js";
import { disabledTracer, Tracer, type Attributes } from "./tracer.js";

/**
 * Tracing for one process, from its configuration: off (a no-op tracer) unless an OTLP endpoint is
 * set; otherwise spans are batched to `<endpoint>/v1/traces` under `service.name`, with the configured
 * headers (collector auth) and compression, through OpenTelemetry's exporter (otlp-exporter.ts).
 */
export interface Tracing {
  readonly tracer: Tracer;
  readonly exporter: OtlpExporter | undefined;
  /** Sends what is still queued. */
  shutdown(): Promise<void>;
}

export function startTracing(
  o: {
    otlpEndpoint: string | undefined; otelServiceName: string | undefined; traceSampleRatio: number;
    otlpHeaders?: string | undefined; otlpCompression?: "none" | "gzip";
  },
  role: string,
  log: Logger,
  resource: Attributes = {},
): Tracing {
  if (o.otlpEndpoint === undefined) return { tracer: disabledTracer, exporter: undefined, shutdown: async () => {} };
  const serviceName = o.otelServiceName ?? `inference-engine-${role}`;
  const headers = o.otlpHeaders === undefined ? {} : parseOtlpHeaders(o.otlpHeaders);
  const exporter = new OtlpExporter({ endpoint: o.otlpEndpoint, serviceName, resource, headers, compression: o.otlpCompression, log });
  log.info({ url: exporter.url, service_name: serviceName, sample_ratio: o.traceSampleRatio, headers: Object.keys(headers), compression: o.otlpCompression ?? "none" }, "trace.export_enabled");
  return { tracer: new Tracer({ sink: exporter, sampleRatio: o.traceSampleRatio }), exporter, shutdown: () => exporter.shutdown() };
}

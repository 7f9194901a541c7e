/**
 * W3C Trace Context `traceparent` header: `00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>`.
 * Parsing follows the spec: lowercase hex only, all-zero ids and version `ff` are invalid; a later
 * version is read by its first four fields. Flag bit 0 is "sampled".
 */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

const HEADER_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

export function parseTraceparent(header: string | string[] | undefined): TraceContext | undefined {
  if (typeof header !== "string") return undefined;
  const m = HEADER_RE.exec(header.trim());
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  if (version === "ff") return undefined;
  // Version 00 has exactly four fields; later versions may append more.
  if (version === "00" && rest !== undefined) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { traceId: traceId!, spanId: spanId!, sampled: (parseInt(flags!, 16) & 1) === 1 };
}

export function formatTraceparent(c: TraceContext): string {
  return `00-${c.traceId}-${c.spanId}-${c.sampled ? "01" : "00"}`;
}

/**
 * A one-exchange worker call (`/worker/generate`) serves two spans of its caller: `traceparent`
 * names the prefill's, this header the decode span the caller opens once the prefill is
 * acknowledged, so that the worker's decode span is that span's child (as with two calls).
 */
export const DECODE_TRACEPARENT_HEADER = "x-decode-traceparent";

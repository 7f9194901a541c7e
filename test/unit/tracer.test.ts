import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { hrTime, toReadableSpan } from "../../src/common/otlp-exporter.js";
import { createRng } from "../../src/common/rng.js";
import { disabledTracer, SpanKind, Tracer, type FinishedSpan } from "../../src/common/tracer.js";
import { parseTraceparent } from "../../src/protocol/traceparent.js";

function recordingTracer(o: { sampleRatio?: number; seed?: number } = {}) {
  const spans: FinishedSpan[] = [];
  let t = 1_700_000_000_000;
  const tracer = new Tracer({ sink: { export: (s) => spans.push(s) }, sampleRatio: o.sampleRatio, rng: createRng(o.seed ?? 1), now: () => (t += 1) });
  return { tracer, spans };
}

describe("Tracer", () => {
  it("is a shared no-op when off: no ids, no traceparent, nothing recorded", () => {
    const a = disabledTracer.startSpan("request");
    const b = disabledTracer.startSpan("prefill", { parent: a });
    assert.equal(a, b);
    assert.equal(a.context, undefined);
    assert.equal(a.traceparent(), undefined);
    a.end();
  });

  it("makes children share the trace and point at their parent; ends once", () => {
    const { tracer, spans } = recordingTracer();
    const root = tracer.startSpan("request", { kind: SpanKind.server, attributes: { "request.id": "r1" } });
    const child = tracer.startSpan("prefill", { parent: root, kind: SpanKind.client });
    child.setAttribute("worker.id", "w1");
    child.setError("boom");
    child.end();
    child.end();
    root.end();
    assert.equal(spans.length, 2);
    const [c, r] = spans;
    assert.equal(c!.traceId, r!.traceId);
    assert.equal(c!.parentSpanId, r!.spanId);
    assert.equal(r!.parentSpanId, undefined);
    assert.match(r!.traceId, /^[0-9a-f]{32}$/);
    assert.match(r!.spanId, /^[0-9a-f]{16}$/);
    assert.equal(c!.error, "boom");
    assert.deepEqual(c!.attributes, { "worker.id": "w1" });
    assert.deepEqual(r!.attributes, { "request.id": "r1" });
    assert.equal(r!.kind, SpanKind.server);
    assert.ok(r!.startMs < c!.startMs && c!.endMs < r!.endMs);
  });

  it("continues a remote trace and says so in the traceparent it hands on", () => {
    const { tracer, spans } = recordingTracer();
    const remote = parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")!;
    const s = tracer.startSpan("request", { parent: remote });
    const tp = parseTraceparent(s.traceparent())!;
    assert.equal(tp.traceId, remote.traceId);
    assert.equal(tp.spanId, s.context!.spanId);
    assert.equal(tp.sampled, true);
    s.end();
    assert.equal(spans[0]!.parentSpanId, remote.spanId);
  });

  it("follows an upstream 'not sampled': ids propagate, nothing is exported", () => {
    const { tracer, spans } = recordingTracer();
    const s = tracer.startSpan("request", { parent: { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", sampled: false } });
    const child = tracer.startSpan("prefill", { parent: s });
    assert.match(child.traceparent()!, /-00$/);
    child.end();
    s.end();
    assert.equal(spans.length, 0);
  });

  it("samples new traces at the configured ratio (seeded)", () => {
    const { tracer, spans } = recordingTracer({ sampleRatio: 0.25, seed: 7 });
    for (let i = 0; i < 400; i++) tracer.startSpan("request").end();
    const rng = createRng(7);
    let expected = 0;
    for (let i = 0; i < 400; i++) if (rng.next() < 0.25) expected++;
    assert.equal(spans.length, expected);
    assert.equal(recordingTracer({ sampleRatio: 0 }).tracer.startSpan("x").context!.sampled, false);
  });
});

describe("spans handed to the OpenTelemetry exporter", () => {
  it("turn epoch ms into [s, ns] without float rounding (epoch ms in a double are exact to about 0.25 µs)", () => {
    assert.deepEqual(hrTime(1_700_000_000_123.25), [1_700_000_000, 123_250_000]);
    assert.deepEqual(hrTime(1_700_000_000_123.5), [1_700_000_000, 123_500_000]);
    assert.deepEqual(hrTime(0), [0, 0]);
    assert.deepEqual(hrTime(1.5), [0, 1_500_000]);
  });

  it("carry ids, the parent, the API's kind, typed attributes, events and an error status", () => {
    const span: FinishedSpan = {
      name: "prefill", kind: SpanKind.client, traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7",
      parentSpanId: "1111111111111111", startMs: 1000.5, endMs: 1002, attributes: { s: "x", i: 3, d: 0.5, b: true },
      events: [{ name: "retry", timeMs: 1001, attributes: undefined }], error: "worker failed",
    };
    const resource = resourceFromAttributes({ "service.name": "svc", "service.instance.id": "w1" });
    const r = toReadableSpan(span, resource);
    assert.deepEqual(r.spanContext(), { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: 1 });
    assert.deepEqual(r.parentSpanContext, { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "1111111111111111", traceFlags: 1 });
    assert.equal(r.kind, 2); // the API's SpanKind.CLIENT; OTLP's 3 on the wire
    assert.deepEqual([r.startTime, r.endTime, r.duration], [[1, 500_000], [1, 2_000_000], [0, 1_500_000]]);
    assert.deepEqual(r.attributes, { s: "x", i: 3, d: 0.5, b: true });
    assert.deepEqual(r.events, [{ name: "retry", time: [1, 1_000_000], attributes: {} }]);
    assert.deepEqual(r.status, { code: 2, message: "worker failed" });
    assert.equal(r.resource, resource);
  });
});

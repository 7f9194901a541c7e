import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "../../src/common/logger.js";
import { OtlpExporter } from "../../src/common/otlp-exporter.js";
import { SpanKind, type FinishedSpan } from "../../src/common/tracer.js";
import { OtlpReceiver } from "../helpers/otlp-receiver.js";
import { freePort } from "../helpers/ports.js";

function span(i: number): FinishedSpan {
  return {
    name: `s${i}`, kind: SpanKind.internal, traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: i.toString(16).padStart(16, "0"),
    parentSpanId: undefined, startMs: 1000 + i, endMs: 1001 + i, attributes: { i }, events: [], error: undefined,
  };
}

function capture() {
  const lines: { msg: string }[] = [];
  const sink = new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split("\n")) if (l !== "") lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, log: createLogger("coordinator", "info", sink) };
}

describe("OTLP exporter", () => {
  it("delivers queued spans in batches of at most 512 to <endpoint>/v1/traces", async () => {
    const receiver = await new OtlpReceiver().start();
    const { log } = capture();
    const exporter = new OtlpExporter({ endpoint: `${receiver.url}/`, serviceName: "svc", log });
    try {
      for (let i = 1; i <= 1100; i++) exporter.export(span(i));
      await exporter.shutdown();
      assert.equal(receiver.spans.length, 1100);
      assert.deepEqual(receiver.requests.map((r) => r.path), ["/v1/traces", "/v1/traces", "/v1/traces"]);
      assert.equal(exporter.exported, 1100);
      assert.deepEqual(receiver.spans.slice(0, 2).map((s) => [s.service, s.name, s.attributes.i]), [["svc", "s1", "1"], ["svc", "s2", "2"]]);
    } finally {
      await receiver.stop();
    }
  });

  it("sends the collector's headers and gzip bodies, and retries an export the collector answered 503", async () => {
    const receiver = await new OtlpReceiver().start();
    const { log } = capture();
    const exporter = new OtlpExporter({ endpoint: receiver.url, serviceName: "svc", headers: { authorization: "Bearer t0ken" }, compression: "gzip", log });
    try {
      receiver.unavailable = 1;
      for (let i = 1; i <= 10; i++) exporter.export(span(i));
      await exporter.shutdown();
      assert.equal(receiver.spans.length, 10);
      assert.equal(exporter.exported, 10);
      assert.equal(exporter.failed, 0);
      assert.equal(receiver.requests.length, 2, "the 503 and its retry");
      for (const r of receiver.requests) assert.deepEqual([r.authorization, r.encoding], ["Bearer t0ken", "gzip"]);
    } finally {
      await receiver.stop();
    }
  });

  it("counts what it cannot deliver, says so once, and drops past its bounded queue", async () => {
    const { lines, log } = capture();
    const exporter = new OtlpExporter({ endpoint: `http://127.0.0.1:${await freePort()}`, serviceName: "svc", log });
    for (let i = 1; i <= 3000; i++) exporter.export(span(i));
    await exporter.shutdown();
    assert.equal(exporter.exported, 0);
    assert.ok(exporter.queued <= 2048, "the queue stays bounded");
    assert.ok(exporter.dropped > 0 && exporter.failed > 0, `dropped ${exporter.dropped}, failed ${exporter.failed}`);
    assert.equal(exporter.failed + exporter.dropped + exporter.queued, 3000, "every span is accounted for");
    assert.equal(lines.filter((l) => l.msg === "trace.export_failed").length, 1);
  });
});

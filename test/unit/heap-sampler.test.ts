import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { promGauge } from "../../src/bench/perf/heap-sampler.js";

const text = [
  "# HELP nodejs_heap_size_used_bytes Process heap size used from Node.js in bytes.",
  "# TYPE nodejs_heap_size_used_bytes gauge",
  "nodejs_heap_size_used_bytes_extra 1",
  "nodejs_heap_size_used_bytes 12345678",
  'nodejs_heap_space_size_used_bytes{space="old"} 900 1700000000000',
  "",
].join("\n");

describe("reading a gauge from a metrics page", () => {
  it("reads the metric itself, not one whose name only starts with it", () => assert.equal(promGauge(text, "nodejs_heap_size_used_bytes"), 12345678));
  it("reads a labelled sample's value, not its timestamp", () => assert.equal(promGauge(text, "nodejs_heap_space_size_used_bytes"), 900));
  it("says nothing of a metric that is absent", () => assert.equal(promGauge(text, "process_resident_memory_bytes"), undefined));
});

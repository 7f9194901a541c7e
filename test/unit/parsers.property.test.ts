import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ServingError } from "../../src/protocol/serving-error.js";
import { httpStatusOf } from "../../src/protocol/error-mapping.js";
import { ConfigError, loadOptions } from "../../src/common/config-parse.js";
import { coordinatorOptions, workerOptions } from "../../src/common/config.js";
import { parseHeartbeat } from "../../src/protocol/heartbeat.js";
import { readSampling } from "../../src/protocol/sampling.js";
import { parseInferRequest } from "../../src/protocol/seed-api.js";
import { SseParser, sseData } from "../../src/protocol/sse.js";
import { parseJsonObject } from "../../src/protocol/validate.js";
import { parseCancelRequest, parseDecodeRequest, parsePrefillRequest } from "../../src/protocol/worker-api.js";

/** Every parser either returns a value or throws a ServingError that maps to a 4xx: never anything else. */
function only4xx(f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!(err instanceof ServingError)) throw err;
    const status = httpStatusOf(err.code);
    assert.ok(status >= 400 && status < 500, `${err.code} → ${status}`);
  }
}

const jsonValue = fc.jsonValue({ maxDepth: 4 });
/** Objects that look like requests: known keys with values of any type, plus noise keys. */
const requestLike = fc.dictionary(
  fc.oneof(
    fc.constantFrom("prompt", "model", "max_tokens", "session_id", "temperature", "top_k", "top_p", "min_p", "seed", "stop",
      "logit_bias", "grammar", "json_schema", "sampling", "worker_id", "worker_url", "health", "timestamp", "interval_ms", "__proto__", "constructor"),
    fc.string(),
  ),
  fc.oneof(jsonValue, fc.string({ unit: "binary" }), fc.double(), fc.integer(), fc.constant(null)),
  { maxKeys: 12 },
);
const RUNS = { numRuns: 400 };

describe("parsers under arbitrary input", () => {
  it("JSON bodies: any text is an object or a 4xx", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 300 }), (t) => only4xx(() => parseJsonObject(t))), RUNS);
    fc.assert(fc.property(jsonValue, (v) => only4xx(() => parseJsonObject(JSON.stringify(v) ?? ""))), RUNS);
  });

  it("seed infer requests", () => {
    fc.assert(fc.property(requestLike, (o) => only4xx(() => parseInferRequest(o, 1_000_000))), RUNS);
  });

  it("worker requests", () => {
    fc.assert(fc.property(requestLike, (o) => {
      only4xx(() => parsePrefillRequest(o));
      only4xx(() => parseDecodeRequest(o));
      only4xx(() => parseCancelRequest(o));
    }), RUNS);
  });

  it("sampling fields", () => {
    fc.assert(fc.property(requestLike, (o) => only4xx(() => readSampling(o))), RUNS);
  });

  it("heartbeats", () => {
    const health = fc.record({ alive: fc.boolean(), active_sessions: fc.oneof(fc.nat(), fc.double(), fc.string()), kv_cache_bytes: fc.oneof(fc.nat(), fc.constant(-1)) }, { requiredKeys: [] });
    const hb = fc.record({ worker_id: fc.string({ maxLength: 200 }), worker_url: fc.oneof(fc.webUrl(), fc.string()), health: fc.oneof(health, jsonValue) }, { requiredKeys: [] });
    fc.assert(fc.property(fc.oneof(hb, requestLike), (o) => only4xx(() => parseHeartbeat(o as Record<string, unknown>))), RUNS);
  });

  it("accepted infer requests satisfy the contract", () => {
    fc.assert(fc.property(requestLike, (o) => {
      let r;
      try {
        r = parseInferRequest(o, 1_000_000);
      } catch {
        return;
      }
      assert.equal(typeof r.prompt, "string");
      assert.ok(r.prompt.length > 0);
      assert.ok(Number.isInteger(r.max_tokens) && r.max_tokens >= 1 && r.max_tokens <= 1_000_000);
    }), RUNS);
  });
});

describe("SSE parser under arbitrary chunking", () => {
  it("recovers exactly the events sent, however the bytes are split", () => {
    const payload = fc.string({ maxLength: 40 }).filter((s) => !/[\r\n]/.test(s));
    fc.assert(fc.property(fc.array(payload, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (datas, cuts) => {
      const text = datas.map((d) => sseData(d)).join("");
      const points = [...new Set(cuts.map((c) => (text.length === 0 ? 0 : c % text.length)))].sort((a, b) => a - b);
      const p = new SseParser();
      const got: string[] = [];
      let prev = 0;
      for (const at of [...points, text.length]) {
        for (const ev of p.push(text.slice(prev, at))) got.push(ev.data);
        prev = at;
      }
      assert.deepEqual(got, datas);
    }), RUNS);
  });
});

describe("configuration under arbitrary values", () => {
  it("either loads or names the bad variable", () => {
    const envName = fc.constantFrom(...Object.values({ ...coordinatorOptions, ...workerOptions }).map((s) => s.env).filter((e): e is string => !!e));
    fc.assert(fc.property(fc.dictionary(envName, fc.string({ maxLength: 30 }), { maxKeys: 5 }), (env) => {
      for (const specs of [coordinatorOptions, workerOptions]) {
        try {
          loadOptions(specs, [], env);
        } catch (err) {
          assert.ok(err instanceof ConfigError, String(err));
          assert.ok(Object.keys(env).some((k) => err.message.includes(k)), err.message);
        }
      }
    }), RUNS);
  });
});

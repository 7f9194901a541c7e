import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { Agent, request } from "undici";
import { waitForRoutable, workerHealth } from "../helpers/cluster.js";
import { getJson, waitFor } from "../helpers/http.js";
import { startCoordinatorProc, startWorkerProc, type Served } from "../helpers/processes.js";

/**
 * 10,000 malformed, oversized, truncated, wrongly typed and unicode-broken requests against a
 * running coordinator and worker: only 4xx answers, no process exit, no leaked session.
 */
const TOTAL = Number(process.env.FUZZ_TOTAL ?? 10_000);
const CONCURRENCY = 32;

function malformedBodies(seed: number): Buffer[] {
  const valid = { prompt: "Once upon a time", model: "m", max_tokens: 3 };
  const rng = fc.sample(
    fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? "null"),
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.record({ prompt: fc.oneof(fc.string({ unit: "binary" }), fc.integer(), fc.constant(""), fc.constant(null)), model: fc.oneof(fc.string(), fc.integer()), max_tokens: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(0), fc.constant(-1), fc.constant(1e300)) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
      fc.nat({ max: 30 }).map((n) => JSON.stringify(valid).slice(0, n)),
      fc.constantFrom('{"__proto__":{"polluted":1},"prompt":1}', '{"constructor":{"prototype":{"x":1}}}', '{"prompt":"\ud800","model":"m","max_tokens":1}'),
    ),
    { seed, numRuns: TOTAL },
  );
  // A few heavy ones: nesting deep enough to exhaust a recursive parser, and bodies over the limit.
  const deep = "[".repeat(100_000) + "]".repeat(100_000);
  const oversized = `{"prompt":"${"x".repeat(1_100_000)}","model":"m","max_tokens":1}`;
  return rng.map((s0, i) => {
    const s = i % 500 === 1 ? deep : i % 500 === 2 ? oversized : s0;
    const b = Buffer.from(s, "utf8");
    // Every seventh body gets bytes that are not UTF-8.
    return i % 7 === 0 ? Buffer.concat([b.subarray(0, b.length >> 1), Buffer.from([0xff, 0xc3, 0x28]), b.subarray(b.length >> 1)]) : b;
  });
}

describe("hostile input against a running cluster", () => {
  let c: Served;
  let w: Served;
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "models-"));
    c = await startCoordinatorProc();
    w = await startWorkerProc(c.url, { id: "w1", env: { MODELS_DIR: dir } });
    await waitForRoutable(c.url, 1);
  });
  after(async () => {
    await Promise.all([w?.proc.stop(), c?.proc.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it(`answers ${TOTAL} malformed requests with 4xx only and leaks nothing`, { timeout: 300_000 }, async () => {
    const bodies = malformedBodies(42);
    const targets = [
      { url: `${c.url}/coordinator/infer`, method: "POST" },
      { url: `${c.url}/coordinator/health/heartbeat`, method: "POST" },
      { url: `${w.url}/worker/prefill`, method: "POST" },
      { url: `${w.url}/worker/decode`, method: "POST" },
      { url: `${w.url}/worker/cancel`, method: "POST" },
      { url: `${c.url}/coordinator/infer`, method: "PUT" },
    ];
    const agent = new Agent({ connections: CONCURRENCY });
    const statuses = new Map<number, number>();
    const unexpected: string[] = [];
    let next = 0;
    const deadline = Date.now() + 240_000;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < TOTAL && Date.now() < deadline) {
        const i = next++;
        const t = targets[i % targets.length]!;
        try {
          const res = await request(t.url, {
            method: t.method as "POST", body: bodies[i], dispatcher: agent,
            headers: { "content-type": i % 11 === 0 ? "text/plain" : "application/json" },
            headersTimeout: 30_000, bodyTimeout: 30_000,
          });
          await res.body.dump();
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
          // A malformed body may still be a valid request by chance (e.g. a valid prompt for infer).
          if (res.statusCode >= 500) unexpected.push(`${t.url} ${res.statusCode} ${bodies[i]!.subarray(0, 80).toString("utf8")}`);
        } catch (err) {
          // The server may close the connection after a 413; that is an answer, not a crash.
          if (!/other side closed|socket|ECONNRESET|EPIPE/i.test(String((err as Error).message))) unexpected.push(String(err));
        }
      }
    }));
    await agent.close();
    assert.deepEqual(unexpected.slice(0, 5), []);
    const answered = [...statuses.values()].reduce((a, b) => a + b, 0);
    assert.ok(answered >= TOTAL * 0.95, `answered ${answered} of ${TOTAL}: ${JSON.stringify([...statuses])}`);
    assert.ok([...statuses.keys()].every((s) => s < 500), JSON.stringify([...statuses]));
    assert.equal(c.proc.alive, true);
    assert.equal(w.proc.alive, true);
    await waitFor(async () => (await getJson(`${c.url}/coordinator/health`)).body.active_sessions === 0, "no coordinator session left");
    await waitFor(async () => {
      const h = await workerHealth(w.url);
      return h.active_sessions === 0 && h.slots.busy === 0 && h.kv_reserved_bytes === 0;
    }, "no worker session left");
    // Only the fuzzer's own valid heartbeats (if any) could add workers; the real one is still routable.
    const ok = await request(`${c.url}/coordinator/infer`, { method: "POST", body: JSON.stringify({ prompt: "Hi", model: "m", max_tokens: 2 }) });
    await ok.body.dump();
    assert.equal(ok.statusCode, 200);
    void randomUUID;
  });
});

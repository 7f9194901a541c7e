import { randomUUID } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { request } from "undici";
import { startCluster, workerHealth, type Cluster } from "../helpers/cluster.js";
import { postJson, streamSse, waitFor } from "../helpers/http.js";
import { writeNoByteModel } from "../helpers/no-byte-model.js";
import { SHARED_MODELS } from "../helpers/processes.js";

/**
 * Fuzzing the engine through a real worker (and its coordinator), on every model in
 * ../shared/models and on a GGUF the project writes without byte tokens: random Unicode prompts
 * (every plane, lone surrogates, control characters, NUL), invalid UTF-8 sent raw to the worker,
 * random and deep grammars, grammars with logit_bias, random sampling parameters, chat messages.
 * Every answer must be 2xx or 4xx (an error inside a stream must carry a client's code), no process
 * may exit, and afterwards the worker holds no session.
 *
 * Seeded: FUZZ_SEED (default 12). Bounded here (FUZZ_RUNS requests per model, default 40); the long
 * run is `npm run fuzz`, which raises FUZZ_RUNS and runs both engines (FUZZ_ENGINES=native,llama).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 12);
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
// "auto": the native engine where it is built, else node-llama-cpp's.
const ENGINES = (process.env.FUZZ_ENGINES ?? "auto").split(",");
let sharedModels: string[] = [];
try {
  sharedModels = readdirSync(SHARED_MODELS).filter((f) => f.endsWith(".gguf")).map((f) => join(SHARED_MODELS, f));
} catch {
  // absent: the project-written model is still fuzzed
}

/** Codes a request may be refused with inside a stream: its own fault, never the engine's. */
const CLIENT_STREAM_CODES = new Set(["grammar_dead_end"]);

// --- arbitraries ---------------------------------------------------------------------------------
const codePoint = fc.oneof(
  fc.integer({ min: 0x20, max: 0x7e }),
  fc.integer({ min: 0, max: 0x1f }),
  fc.integer({ min: 0x80, max: 0xffff }),
  fc.integer({ min: 0x10000, max: 0x10ffff }),
  fc.integer({ min: 0xd800, max: 0xdfff }),
);
const char = codePoint.map((cp) => (cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp)));
const words = fc.constantFrom("Once upon a time", " the", " cat", " # ", " café", "\n", "\u0000", "<s>", "</s>", " 😀", "\t", "[INST]");
const text = fc.array(fc.oneof(char, words), { minLength: 0, maxLength: 40 }).map((parts) => parts.join(""));
const nonEmptyText = text.map((t) => (t === "" ? "x" : t));

const literal = fc.array(fc.oneof(fc.constantFrom("a", "b", " ", "é", "x"), char), { minLength: 1, maxLength: 4 })
  .map((s) => JSON.stringify(s.join("")));
const element = fc.oneof(literal, fc.constantFrom("[a-z]", "[^\\n]", ".", '"\\n"', "[0-9]"));
const body = fc.array(fc.tuple(element, fc.constantFrom("", "*", "+", "?", "{1,3}", "{2}")).map(([e, r]) => e + r), { minLength: 1, maxLength: 5 })
  .map((xs) => xs.join(" "));
const grammar = fc.oneof(
  body.map((b) => `root ::= ${b}`),
  fc.tuple(body, body).map(([a, b]) => `root ::= (${a}) | x\nx ::= ${b}`),
  fc.integer({ min: 1, max: 40_000 }).map((d) => `root ::= ${"(".repeat(d)}"a"${")".repeat(d)}`),
  text.map((t) => `root ::= ${t}`),
  text,
);
const logitBias = fc.dictionary(fc.integer({ min: 0, max: 33_000 }).map(String), fc.integer({ min: -100, max: 100 }), { maxKeys: 40 });
const banRange = fc.tuple(fc.integer({ min: 0, max: 600 }), fc.integer({ min: 1, max: 600 }))
  .map(([from, n]) => Object.fromEntries(Array.from({ length: Math.min(n, 1024) }, (_, i) => [String(from + i), -100])));
const sampling = fc.record({
  temperature: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 2, noNaN: true })),
  top_k: fc.integer({ min: -1, max: 100 }),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
  min_p: fc.double({ min: 0, max: 1, noNaN: true }),
  repeat_penalty: fc.double({ min: 0, max: 2, noNaN: true }),
  presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  frequency_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  seed: fc.integer({ min: 0, max: 2 ** 31 }),
}, { requiredKeys: [] });
const message = fc.record({ role: fc.constantFrom("system", "user", "assistant"), content: text });

type Case =
  | { kind: "infer"; body: Record<string, unknown> }
  | { kind: "chat"; body: Record<string, unknown> }
  | { kind: "raw"; prompt: Uint8Array };

const inferCase = fc.record({
  prompt: nonEmptyText,
  max_tokens: fc.integer({ min: 1, max: 6 }),
  grammar: fc.option(grammar, { nil: undefined }),
  logit_bias: fc.option(fc.oneof(logitBias, banRange), { nil: undefined }),
  sampling,
}).map(({ sampling: s, ...rest }): Case => ({ kind: "infer", body: JSON.parse(JSON.stringify({ ...rest, ...s })) }));
const chatCase = fc.record({
  messages: fc.array(message, { minLength: 1, maxLength: 3 }),
  max_tokens: fc.integer({ min: 1, max: 6 }),
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
}).map((b): Case => ({ kind: "chat", body: b }));
const rawCase = fc.uint8Array({ minLength: 1, maxLength: 40 }).map((prompt): Case => ({ kind: "raw", prompt }));
const fuzzCase = fc.oneof({ arbitrary: inferCase, weight: 5 }, { arbitrary: chatCase, weight: 2 }, { arbitrary: rawCase, weight: 1 });

// --- one request ---------------------------------------------------------------------------------
async function send(c: Cluster, modelId: string, k: Case): Promise<string> {
  if (k.kind === "infer") {
    const r = await streamSse(`${c.url}/coordinator/infer`, { model: "m", ...k.body });
    assert.ok(r.status < 500, `infer ${JSON.stringify(k.body).slice(0, 300)} -> ${r.status} ${r.raw.slice(0, 300)}`);
    const inStream = r.status === 200 ? r.events.find((e) => e.error !== undefined)?.error : undefined;
    assert.ok(inStream === undefined || CLIENT_STREAM_CODES.has(inStream.code), `infer ${JSON.stringify(k.body).slice(0, 300)} failed in the stream: ${JSON.stringify(inStream)}`);
    return `${r.status}${inStream ? ` ${inStream.code}` : r.status !== 200 ? ` ${r.events[0]?.reason}` : ""}`;
  }
  if (k.kind === "chat") {
    const r = await postJson(`${c.url}/v1/chat/completions`, { model: modelId, ...k.body });
    assert.ok(r.status < 500, `chat ${JSON.stringify(k.body).slice(0, 300)} -> ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    return `${r.status}${r.status !== 200 ? ` ${r.body?.error?.code}` : ""}`;
  }
  // Invalid UTF-8 inside the JSON string, straight to the worker: prefill, then decode to the end.
  const worker = c.workers[0]!.url;
  const sessionId = randomUUID();
  const raw = Buffer.concat([
    Buffer.from(`{"session_id":"${sessionId}","max_tokens":2,"prompt":"`),
    Buffer.from(k.prompt.map((b) => (b === 0x22 || b === 0x5c || b < 0x20 ? 0x41 : b))),
    Buffer.from(`"}`),
  ]);
  const res = await request(`${worker}/worker/prefill`, { method: "POST", body: raw, headers: { "content-type": "application/json" } });
  await res.body.text();
  assert.ok(res.statusCode < 500, `raw prefill ${Buffer.from(k.prompt).toString("hex")} -> ${res.statusCode}`);
  if (res.statusCode === 200) {
    const d = await streamSse(`${worker}/worker/decode`, { session_id: sessionId });
    assert.ok(d.status < 500, `raw decode -> ${d.status}`);
  }
  return `raw ${res.statusCode}`;
}

for (const engine of ENGINES) {
  describe(`worker fuzz (${engine} engine)`, () => {
    const clusters = new Map<string, Cluster>();
    const models: string[] = [...sharedModels];

    before(async () => {
      models.push(await writeNoByteModel());
    });

    after(async () => {
      await Promise.all([...clusters.values()].map((c) => c.stop()));
    });

    it("answers random requests with 2xx or 4xx, keeps every process up and leaks no session", { timeout: Math.max(600_000, RUNS * 3_000) }, async (t) => {
      for (const model of models) {
        const cluster = await startCluster({ workers: 1, model, workerEnv: { ENGINE: engine, CONTEXT_SIZE: "256", PARALLEL: "2" } });
        clusters.set(model, cluster);
        const modelId = model.split("/").pop()!.replace(/\.gguf$/, "");
        const seen = new Map<string, number>();
        await fc.assert(
          fc.asyncProperty(fuzzCase, async (k) => {
            const outcome = await send(cluster, modelId, k);
            seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
            for (const p of [cluster.coordinator.proc, ...cluster.workers.map((w) => w.proc)]) {
              assert.ok(p.alive, `${p.name} exited: ${p.stderr.join("").slice(-1000)}`);
            }
          }),
          { seed: SEED, numRuns: RUNS, endOnFailure: true },
        );
        await waitFor(async () => (await workerHealth(cluster.workers[0]!.url)).active_sessions === 0, `${modelId}: no session left`, 10_000);
        t.diagnostic(`${modelId}: ${[...seen].sort().map(([k, n]) => `${k} x${n}`).join(", ")}`);
        await cluster.stop();
        clusters.delete(model);
      }
    });
  });
}

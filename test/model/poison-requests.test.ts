import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startCluster, workerHealth, type Cluster } from "../helpers/cluster.js";
import { postJson, streamSse } from "../helpers/http.js";
import { parsePromText, scrape } from "../helpers/prom-text.js";
import { writeNoByteModel } from "../helpers/no-byte-model.js";
import { STORIES_MODEL, missingModel, spawnCli } from "../helpers/processes.js";
import { loadNativeBinding } from "../../src/engine/native-binding.js";

/**
 * Requests that used to kill every worker they were sent to (SIGABRT, SIGSEGV), each now answered
 * with a 400 naming the problem while both workers of the fleet stay up and hold no session. Run on
 * both engines: the native one (our addon) and node-llama-cpp's.
 */
const skip = missingModel(STORIES_MODEL);
const DEEP = 32_000;
const deepGrammar = `root ::= ${"(".repeat(DEEP)}"a"${")".repeat(DEEP)}`;
// Every token a grammar of "a"s could use is banned: nothing is allowed.
const banAll = (vocab: number) => Object.fromEntries(Array.from({ length: Math.min(vocab, 1024) }, (_, i) => [String(i), -100]));

interface Answer { status: number; reason?: string; message?: string; ms: number }

async function infer(url: string, body: Record<string, unknown>): Promise<Answer & { body: any }> {
  const t0 = performance.now();
  const r = await streamSse(`${url}/coordinator/infer`, { model: "m", max_tokens: 8, ...body });
  const ms = Math.round(performance.now() - t0);
  // An error after the stream started travels in it: {reason: "error", error: {code, message}}.
  const inStream = r.events.find((e) => e.error !== undefined)?.error;
  const err = r.status === 200 ? (inStream === undefined ? undefined : { reason: inStream.code, error: inStream.message }) : r.events[0];
  if (process.env.TEST_VERBOSE) console.log(r.raw.slice(0, 2000));
  return { status: r.status, reason: err?.reason, message: err?.error, ms, body: r.status === 200 ? r.last : r.events[0] };
}

for (const engine of ["native", "llama"] as const) {
  const native = loadNativeBinding();
  const engineSkip = engine === "native" && !native.ok ? `the native engine is not built: ${native.reason}` : undefined;
  describe(`poison requests (${engine} engine)`, { skip: skip ?? engineSkip }, () => {
    let noByte: Cluster;
    let stories: Cluster;
    const measured: string[] = [];

    before(async () => {
      const path = await writeNoByteModel();
      const workerEnv = { ENGINE: engine, CONTEXT_SIZE: "256" };
      [noByte, stories] = await Promise.all([
        startCluster({ workers: 2, model: path, workerEnv }),
        startCluster({ workers: 2, model: STORIES_MODEL, workerEnv }),
      ]);
    });

    after(async () => {
      for (const line of measured) console.log(`# ${engine}: ${line}`);
      await Promise.all([noByte?.stop(), stories?.stop()]);
    });

    async function assertFleetUnharmed(c: Cluster): Promise<void> {
      for (const w of c.workers) {
        assert.ok(w.proc.alive, `${w.proc.name} is still running`);
        assert.equal((await workerHealth(w.url)).active_sessions, 0, `${w.proc.name} holds no session`);
      }
    }

    it("refuses a character the vocabulary lacks (no byte tokens) with unsupported_characters naming it", async () => {
      const ok = await infer(noByte.url, { prompt: "Once upon a time" });
      assert.equal(ok.status, 200);
      for (let i = 0; i < 3; i++) {
        const r = await infer(noByte.url, { prompt: "Once upon a time # café" });
        assert.equal(r.status, 400, JSON.stringify(r));
        assert.equal(r.reason, "unsupported_characters");
        assert.match(r.message!, /U\+00E9 at offset 22/);
        assert.equal(r.body.character, "U+00E9");
        assert.equal(r.body.offset, 22);
        if (i === 0) measured.push(`"Once upon a time # café" -> ${r.status} ${r.reason} "${r.message}" in ${r.ms} ms`);
      }
      await assertFleetUnharmed(noByte);
    });

    it("refuses the same character in a chat message", async () => {
      const t0 = performance.now();
      const r = await postJson(`${noByte.url}/v1/chat/completions`, { model: "no-byte", max_tokens: 4, messages: [{ role: "user", content: "Tell me a story # café" }] });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, "unsupported_characters");
      assert.match(r.body.error.message, /messages\[0\]\.content holds U\+00E9 at offset 21/);
      measured.push(`chat "Tell me a story # café" -> ${r.status} ${r.body.error.code} "${r.body.error.message}" in ${Math.round(performance.now() - t0)} ms`);
      await assertFleetUnharmed(noByte);
    });

    it("refuses a grammar that demands a character no token can produce", async () => {
      const r = await infer(noByte.url, { prompt: "Once", grammar: 'root ::= "a" "硆"+' });
      assert.equal(r.status, 400, JSON.stringify(r));
      assert.equal(r.reason, "unsupported_characters");
      measured.push(`grammar demanding U+7846 on the no-byte model -> ${r.status} ${r.reason} "${r.message}" in ${r.ms} ms`);
      await assertFleetUnharmed(noByte);
    });

    it("generates at a temperature so small that every probability would be NaN", async () => {
      const r = await postJson(`${stories.url}/v1/chat/completions`, { model: "stories260K", max_tokens: 3, temperature: 1.41e-39, messages: [{ role: "user", content: "Hi" }] });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.usage.completion_tokens, 3);
      await assertFleetUnharmed(stories);
    });

    it("refuses a grammar nested 32,000 levels deep with invalid_grammar", async () => {
      const r = await infer(stories.url, { prompt: "Once", grammar: deepGrammar });
      assert.equal(r.status, 400, JSON.stringify(r));
      assert.equal(r.reason, "invalid_grammar");
      measured.push(`grammar nested ${DEEP} deep -> ${r.status} ${r.reason} "${r.message}" in ${r.ms} ms`);
      await assertFleetUnharmed(stories);
    });

    it("ends a grammar whose every allowed token is banned by logit_bias without harm", async () => {
      const r = await infer(stories.url, { prompt: "Once", grammar: 'root ::= "a"+', logit_bias: banAll(512), temperature: 0 });
      // The native engine ends the request (no token is allowed) in the stream, which the prefill
      // began; node-llama-cpp's bans are finite, so it generates the least-bad token the grammar allows.
      if (engine === "native") {
        assert.equal(r.reason, "grammar_dead_end", JSON.stringify(r));
        assert.equal(r.body.completion_tokens ?? 0, 0);
      } else {
        assert.equal(r.status, 200, JSON.stringify(r));
      }
      measured.push(`grammar with every token banned -> ${r.status} ${r.reason ?? r.body?.reason} ${r.message ?? ""} in ${r.ms} ms`);
      // A one-body OpenAI answer has not begun when the dead end is found: it is the client's 400.
      const chat = await postJson(`${stories.url}/v1/chat/completions`, { model: "stories260K", max_tokens: 3, temperature: 0, logit_bias: banAll(512), messages: [{ role: "user", content: "Hi" }] });
      if (engine === "native") {
        assert.equal(chat.status, 400, JSON.stringify(chat.body));
        assert.equal(chat.body.error.code, "grammar_dead_end");
      } else {
        assert.equal(chat.status, 200, JSON.stringify(chat.body));
      }
      const hot = await infer(stories.url, { prompt: "Once", grammar: 'root ::= "a"+', logit_bias: banAll(512), temperature: 1, seed: 7 });
      assert.ok(hot.status === 200 || hot.status === 400, JSON.stringify(hot));
      await assertFleetUnharmed(stories);
    });

    it("ends a stream whose every token is banned with the request's own error, without failing over", { skip: engine !== "native" ? "node-llama-cpp's bans are finite: it never reaches a dead end" : undefined }, async () => {
      const failovers = async () => parsePromText((await scrape(stories.url)).text).find((m) => m.name === "inference_coordinator_stream_failovers_total")?.value ?? 0;
      const before = await failovers();
      // No grammar: a failover would be allowed if the coordinator took the dead end for the worker's fault.
      const r = await infer(stories.url, { prompt: "Once", logit_bias: banAll(512), temperature: 0 });
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(r.reason, "grammar_dead_end", JSON.stringify(r));
      assert.equal(await failovers(), before, "no failover for the request's own fault");
      await assertFleetUnharmed(stories);
    });

    it("never accepts an end token before the grammar is complete", async () => {
      // Only <unk>, BOS and EOS left: the grammar allows none of them before "abcdef" is complete.
      const bias = Object.fromEntries(Array.from({ length: 509 }, (_, i) => [String(i + 3), -100]));
      const r = await infer(stories.url, { prompt: "Once", grammar: 'root ::= "abc" "def"', logit_bias: bias, temperature: 1, seed: 3 });
      assert.ok(r.status === 400 || r.status === 200, JSON.stringify(r));
      if (engine === "native") assert.equal(r.reason, "grammar_dead_end");
      measured.push(`end token before the grammar completes -> ${r.status} ${r.reason ?? r.body?.reason} in ${r.ms} ms`);
      await assertFleetUnharmed(stories);
    });

    it("refuses a prompt whose byte length cannot fit the context before tokenizing it", async () => {
      const r = await infer(stories.url, { prompt: "x".repeat(200_000) });
      assert.equal(r.status, 400, JSON.stringify(r));
      assert.ok(r.reason === "context_length_exceeded" || r.reason === "prompt_too_long", JSON.stringify(r));
      measured.push(`prompt of 200,000 bytes -> ${r.status} ${r.reason} "${r.message}" in ${r.ms} ms`);
      await assertFleetUnharmed(stories);
    });
  });
}

describe("worker configuration", () => {
  it("refuses PARALLEL greater than BATCH_SIZE at start, naming both", { timeout: 30_000 }, async (t) => {
    const t0 = performance.now();
    const proc = spawnCli("worker", ["worker", "--port", "0", "--host", "127.0.0.1", "--engine", "sim"], { PARALLEL: "8", BATCH_SIZE: "4" });
    t.after(() => proc.kill("SIGKILL"));
    const { code } = await proc.exited;
    const stderr = proc.stderr.join("");
    assert.equal(code, 2, stderr);
    assert.match(stderr, /configuration error: PARALLEL .*8 exceeds BATCH_SIZE .*4/);
    console.log(`# PARALLEL 8 BATCH_SIZE 4 -> exit ${code} "${stderr.trim()}" in ${Math.round(performance.now() - t0)} ms`);
  });
});

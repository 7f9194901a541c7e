import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ManualClock } from "../../src/common/clock.js";
import { ServingError } from "../../src/protocol/serving-error.js";
import { padTokenText, createSimEngine, type SimEngine, type SimEngineOptions } from "../../src/engine/sim-engine.js";
import { NO_FAULTS, type SimFaults } from "../../src/engine/sim-faults.js";
import { VirtualSleeper } from "../../src/engine/sim-sleeper.js";
import { interTokenMs, prefillMs, type SimTiming } from "../../src/engine/sim-timing.js";
import { SIM_BOS, simTokenize } from "../../src/engine/sim-tokenizer.js";

const TIMING: SimTiming = { prefillBaseMs: 2, prefillPerTokenMs: 0.5, itlMs: 20, itlPerSequenceMs: 1, jitter: 0, slowFactor: 1 };

function setup(over: { timing?: Partial<SimTiming>; faults?: Partial<SimFaults>; seed?: number; contextSize?: number; tokenChars?: number } = {}) {
  const clock = new ManualClock();
  const sleeper = new VirtualSleeper(clock);
  const events: string[] = [];
  const opts: SimEngineOptions = {
    modelId: "sim", contextSize: over.contextSize ?? 4096, parallel: 4, kvBytesPerToken: 1000, tokenChars: over.tokenChars ?? 0,
    timing: { ...TIMING, ...over.timing }, faults: { ...NO_FAULTS, ...over.faults }, seed: over.seed ?? 7,
    clock, sleeper, hooks: { crash: () => events.push("crash"), freeze: () => events.push("freeze") },
  };
  return { engine: createSimEngine(opts), clock, sleeper, events };
}

async function collect(engine: SimEngine, seq: number, maxTokens: number, signal = new AbortController().signal): Promise<string[]> {
  const out: string[] = [];
  for await (const t of engine.sequences[seq]!.generate({ sampling: {}, maxTokens, signal })) out.push(t.text);
  return out;
}

describe("the sim timing model", () => {
  const cases: [string, Partial<SimTiming>, number, number][] = [
    ["prefill: base + per token", {}, 10, 2 + 0.5 * 10],
    ["prefill: nothing evaluated costs the base", {}, 0, 2],
    ["prefill: slow factor multiplies", { slowFactor: 3 }, 10, 3 * 7],
    ["prefill: jitter at u=1 is +jitter", { jitter: 0.5 }, 10, 7 * 1.5],
  ];
  for (const [name, t, tokens, want] of cases) {
    it(name, () => assert.equal(prefillMs({ ...TIMING, ...t }, tokens, name.includes("jitter") ? 1 : 0.5), want));
  }
  const itl: [string, Partial<SimTiming>, number, number, number][] = [
    ["inter-token: one sequence decodes at the base", {}, 1, 0.5, 20],
    ["inter-token: grows with the batch", {}, 5, 0.5, 24],
    ["inter-token: jitter at u=0 is -jitter", { jitter: 0.25 }, 1, 0, 15],
    ["inter-token: slow factor multiplies the batch term too", { slowFactor: 2 }, 3, 0.5, 44],
    ["inter-token: bulk (0 ms) stays 0", { itlMs: 0, itlPerSequenceMs: 0 }, 8, 0.5, 0],
  ];
  for (const [name, t, batch, u, want] of itl) it(name, () => assert.equal(interTokenMs({ ...TIMING, ...t }, batch, u), want));
});

describe("the sim engine", () => {
  it("tokenizes as BOS plus one token per 4 bytes, prefix-stable", () => {
    const a = simTokenize("Once upon a time");
    assert.equal(a.length, 1 + 4);
    assert.equal(a[0], SIM_BOS);
    assert.deepEqual(simTokenize("Once upon a time there").slice(0, 5), a);
    assert.equal(simTokenize("").length, 1);
  });

  it("prefills in base + per-token time and reuses a held prefix for free", async () => {
    const { engine, sleeper } = setup();
    const seq = engine.sequences[0]!;
    const prompt = simTokenize("a".repeat(40)); // 11 tokens
    const signal = new AbortController().signal;
    assert.deepEqual(await seq.prefill(prompt, signal), { evaluated: 11, reused: 0 });
    assert.equal(seq.heldTokens().length, 10); // the last prompt token waits for the first decode step
    const longer = simTokenize("a".repeat(48)); // 13 tokens, 10 of them held
    assert.deepEqual(await seq.prefill(longer, signal), { evaluated: 3, reused: 10 });
    assert.deepEqual(sleeper.sleeps, [2 + 0.5 * 11, 2 + 0.5 * 3]);
  });

  it("streams max_tokens tokens at the inter-token time of its batch, holding their KV", async () => {
    const { engine, sleeper, clock } = setup();
    const signal = new AbortController().signal;
    await engine.sequences[0]!.prefill(simTokenize("hello"), signal);
    await engine.sequences[1]!.prefill(simTokenize("world"), signal);
    sleeper.sleeps.length = 0;
    const start = clock.now();
    const a = engine.sequences[0]!.generate({ sampling: {}, maxTokens: 3, signal })[Symbol.asyncIterator]();
    const b = engine.sequences[1]!.generate({ sampling: {}, maxTokens: 2, signal })[Symbol.asyncIterator]();
    await a.next(); // A alone: batch 1
    await b.next(); // A and B: batch 2
    await a.next();
    await b.next();
    assert.equal((await b.next()).done, true); // B ends: A alone again
    await a.next();
    assert.equal((await a.next()).done, true);
    // Streams wait in parallel on one clock. A's tokens are due at 20 (batch 1), 41 (batch 2) and
    // 61 (batch 1 again); B's at 41 and 62 (batch 2). A's later tokens are already due when asked for.
    assert.deepEqual(sleeper.sleeps, [20, 21, 21]);
    assert.equal(clock.now() - start, 62);
    assert.equal(engine.sequences[0]!.heldTokens().length, 3 + 3); // BOS + 2 prompt tokens + 3 generated
    assert.equal(engine.decoding, 0);
  });

  it("generates the same text for the same prompt and seed, another for another seed", async () => {
    const run = async (seed: number) => {
      const { engine } = setup({ seed });
      await engine.sequences[0]!.prefill(simTokenize("Once upon a time"), new AbortController().signal);
      return (await collect(engine, 0, 12)).join("");
    };
    const first = await run(1);
    assert.equal(await run(1), first);
    assert.notEqual(await run(2), first);
    assert.match(first, /^( [a-z]{3}){12}$/);
  });

  it("applies jitter within its bounds, identically on a rerun", async () => {
    const run = async () => {
      const { engine, sleeper } = setup({ timing: { jitter: 0.1 } });
      await engine.sequences[0]!.prefill(simTokenize("jitter me"), new AbortController().signal);
      await collect(engine, 0, 20);
      return sleeper.sleeps.slice(1);
    };
    const sleeps = await run();
    assert.equal(sleeps.length, 20);
    for (const s of sleeps) assert.ok(s >= 18 - 1e-9 && s <= 22 + 1e-9, `sleep ${s}`);
    assert.ok(new Set(sleeps.map((s) => s.toFixed(6))).size > 1);
    assert.deepEqual(await run(), sleeps);
  });

  it("stops at the context size", async () => {
    const { engine } = setup({ contextSize: 8 });
    await engine.sequences[0]!.prefill(simTokenize("abcdefgh"), new AbortController().signal); // 3 tokens
    assert.equal((await collect(engine, 0, 100)).length, 5);
  });

  it("runs without waiting when the inter-token time is 0, yielding every 16 tokens", async () => {
    const { engine, sleeper } = setup({ timing: { itlMs: 0, itlPerSequenceMs: 0, prefillBaseMs: 0, prefillPerTokenMs: 0 } });
    await engine.sequences[0]!.prefill(simTokenize("bulk"), new AbortController().signal);
    assert.equal((await collect(engine, 0, 40)).length, 40);
    assert.deepEqual(sleeper.sleeps, [0, 0, 0]);
  });
});

describe("the sim engine's faults", () => {
  const signal = () => new AbortController().signal;

  it("fails every prefill at probability 1 and none at 0", async () => {
    const on = setup({ faults: { failPrefillProbability: 1 } });
    await assert.rejects(on.engine.sequences[0]!.prefill(simTokenize("x"), signal()), (e) => e instanceof ServingError && e.code === "internal");
    const off = setup();
    await off.engine.sequences[0]!.prefill(simTokenize("x"), signal());
  });

  it("fails the same prefills under the same seed", async () => {
    const pattern = async (seed: number) => {
      const { engine } = setup({ seed, faults: { failPrefillProbability: 0.5 } });
      let out = "";
      for (let i = 0; i < 32; i++) {
        out += await engine.sequences[0]!.prefill(simTokenize(`p${i}`), signal()).then(() => "o", () => "x");
      }
      return out;
    };
    const a = await pattern(3);
    assert.equal(await pattern(3), a);
    assert.match(a, /o/);
    assert.match(a, /x/);
    assert.notEqual(await pattern(4), a);
  });

  it("crashes the process when asked for a token after N tokens in total", async () => {
    const { engine, events } = setup({ faults: { crashAfterTokens: 5 } });
    await engine.sequences[0]!.prefill(simTokenize("one"), signal());
    await engine.sequences[1]!.prefill(simTokenize("two"), signal());
    assert.equal((await collect(engine, 0, 3)).length, 3);
    assert.deepEqual(events, []);
    const got: string[] = [];
    await assert.rejects(async () => {
      for await (const t of engine.sequences[1]!.generate({ sampling: {}, maxTokens: 10, signal: signal() })) got.push(t.text);
    }, /simulated crash after 5 tokens/);
    assert.equal(got.length, 2);
    assert.deepEqual(events, ["crash"]);
  });

  it("crashes the process while tokenizing a prompt that carries the poison marker, and only then", () => {
    const { engine, events } = setup({ faults: { crashOnPrompt: "POISON" } });
    engine.tokenize("a harmless prompt");
    assert.deepEqual(events, []);
    assert.throws(() => engine.tokenize("a POISON prompt"), /simulated crash on a poison prompt/);
    assert.deepEqual(events, ["crash"]);
  });

  it("crashes the process after N tokens of a poison prompt's stream, not of another's", async () => {
    const { engine, events } = setup({ faults: { crashOnPrompt: "POISON", crashOnPromptAfterTokens: 3 } });
    await engine.sequences[0]!.prefill(engine.tokenize("a harmless prompt"), signal());
    assert.equal((await collect(engine, 0, 6)).length, 6);
    await engine.sequences[1]!.prefill(engine.tokenize("a POISON prompt"), signal());
    const got: string[] = [];
    await assert.rejects(async () => {
      for await (const t of engine.sequences[1]!.generate({ sampling: {}, maxTokens: 10, signal: signal() })) got.push(t.text);
    }, /poison prompt/);
    assert.equal(got.length, 3);
    assert.deepEqual(events, ["crash"]);
  });

  it("hangs a prefill until it is aborted", async () => {
    const { engine } = setup({ faults: { hang: "prefill" } });
    const ac = new AbortController();
    let settled = false;
    const p = engine.sequences[0]!.prefill(simTokenize("x"), ac.signal).finally(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false);
    ac.abort();
    await assert.rejects(p, /prefill aborted/);
  });

  it("opens a decode that never yields a token until aborted", async () => {
    const { engine } = setup({ faults: { hang: "decode" } });
    const ac = new AbortController();
    await engine.sequences[0]!.prefill(simTokenize("x"), ac.signal);
    const p = collect(engine, 0, 5, ac.signal);
    await new Promise((r) => setImmediate(r));
    assert.equal(engine.decoding, 1);
    ac.abort();
    assert.deepEqual(await p, []);
    assert.equal(engine.decoding, 0);
  });

  it("freezes the process once, at its first prefill", async () => {
    const { engine, events } = setup({ faults: { hang: "process" } });
    await engine.sequences[0]!.prefill(simTokenize("x"), signal());
    await engine.sequences[1]!.prefill(simTokenize("y"), signal());
    assert.deepEqual(events, ["freeze"]);
  });

  it("stalls a stream after K tokens for the stall time, then resumes", async () => {
    const { engine, sleeper } = setup({ faults: { stallAfterTokens: 2, stallMs: 500 } });
    await engine.sequences[0]!.prefill(simTokenize("x"), signal());
    sleeper.sleeps.length = 0;
    assert.equal((await collect(engine, 0, 4)).length, 4);
    assert.deepEqual(sleeper.sleeps, [20, 20, 500, 20, 20]);
  });

  it("stalls a stream forever (until cancelled) when the stall time is 0", async () => {
    const { engine } = setup({ faults: { stallAfterTokens: 1 } });
    const ac = new AbortController();
    await engine.sequences[0]!.prefill(simTokenize("x"), ac.signal);
    const got: string[] = [];
    const p = (async () => {
      for await (const t of engine.sequences[0]!.generate({ sampling: {}, maxTokens: 5, signal: ac.signal })) got.push(t.text);
    })();
    await new Promise((r) => setImmediate(r));
    assert.equal(got.length, 1);
    ac.abort();
    await p;
    assert.equal(got.length, 1);
  });

  it("answers slowly by the slow factor", async () => {
    const { engine, sleeper } = setup({ timing: { slowFactor: 4 } });
    await engine.sequences[0]!.prefill(simTokenize("abcd"), signal()); // 2 tokens
    await collect(engine, 0, 2);
    assert.deepEqual(sleeper.sleeps, [4 * (2 + 0.5 * 2), 80, 80]);
  });
});

describe("sim token size", () => {
  it("pads every token's text to the configured size, keeping the word", () => {
    assert.equal(padTokenText("cat", 6), "cat...");
    assert.equal(padTokenText("elephant", 4), "elep");
    assert.equal(padTokenText("dog", 3), "dog");
  });
});

import { statSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../src/common/logger.js";
import { createRng } from "../../src/common/rng.js";
import type { Engine, EngineSequence, GeneratedToken } from "../../src/engine/engine.js";
import { createLlamaEngine } from "../../src/engine/llama-engine.js";
import { loadNativeBinding } from "../../src/engine/native-binding.js";
import { createNativeEngine } from "../../src/engine/native-engine.js";
import type { TokenStream } from "../../src/engine/native-token-stream.js";
import type { SamplingParams } from "../../src/protocol/sampling.js";
import { STORIES_MODEL, missingModel } from "../helpers/processes.js";

/**
 * The native engine against the node-llama-cpp engine, both in this process over the same
 * stories260K file: greedy output must match token for token, whatever the native engine's
 * batching, pausing, cancelling or prefix reuse did before.
 */
const skip = missingModel(STORIES_MODEL) ?? (process.platform !== "linux" ? "the native engine is built on Linux only" : undefined);
const log = createLogger("test", "error");
const GREEDY: SamplingParams = { temperature: 0 };
const PROMPTS = ["Once upon a time", "Tom had a big red ball. One day", "The sun was shining and the birds", "Sue wanted to help her mom"];

interface Run {
  ids: number[];
  text: string;
}

async function prefilled(engine: Engine, seq: EngineSequence, prompt: string) {
  return seq.prefill(engine.tokenize(prompt), new AbortController().signal);
}

async function collect(tokens: AsyncIterable<GeneratedToken>, limit = Infinity): Promise<Run> {
  const run: Run = { ids: [], text: "" };
  for await (const t of tokens) {
    run.ids.push(t.id);
    run.text += t.text;
    if (run.ids.length >= limit) break;
  }
  return run;
}

async function generate(engine: Engine, seq: EngineSequence, prompt: string, maxTokens: number, sampling = GREEDY): Promise<Run> {
  await prefilled(engine, seq, prompt);
  const run = await collect(seq.generate({ sampling, maxTokens, signal: new AbortController().signal }));
  await seq.clear();
  return run;
}

describe("the native engine", { skip }, () => {
  let native: Engine;
  let reference: Engine;
  const expected = new Map<string, Run>();

  before(async () => {
    const loaded = loadNativeBinding();
    assert.ok(loaded.ok, loaded.ok ? "" : `native engine not built: ${loaded.reason}`);
    native = await createNativeEngine({
      modelPath: STORIES_MODEL, modelId: "stories", threads: 1, threadsBatch: 1, parallel: 4, contextSize: 512, batchSize: 512, poll: 0, cpuBackend: "auto", modelBytes: statSync(STORIES_MODEL).size, log,
    });
    reference = await createLlamaEngine({
      modelPath: STORIES_MODEL, modelId: "stories", threads: 1, parallel: 1, contextSize: 512, batchSize: 512, gpu: "off", log,
    });
    for (const p of PROMPTS) expected.set(p, await generate(reference, reference.sequences[0]!, p, 100));
  });
  after(async () => {
    await native?.close();
    await reference?.close();
  });

  it("tokenizes as node-llama-cpp does", () => {
    for (const p of [...PROMPTS, "é ü 漢字 and emoji 🙂", ""]) assert.deepEqual(native.tokenize(p), reference.tokenize(p), p);
  });

  it("generates greedily token for token what node-llama-cpp generates", async () => {
    for (const p of PROMPTS) {
      const run = await generate(native, native.sequences[0]!, p, 100);
      assert.deepEqual(run.ids, expected.get(p)!.ids, p);
      assert.equal(run.text, expected.get(p)!.text, p);
    }
  });

  it("holds the prompt and the evaluated tokens after a generation, as node-llama-cpp does", async () => {
    for (const engine of [native, reference]) {
      const seq = engine.sequences[0]!;
      const prompt = engine.tokenize(PROMPTS[0]!);
      await seq.prefill(prompt, new AbortController().signal);
      // The native engine evaluates the last prompt token at prefill; node-llama-cpp at the first step.
      assert.deepEqual(seq.heldTokens(), engine === native ? prompt : prompt.slice(0, -1));
      const run = await collect(seq.generate({ sampling: GREEDY, maxTokens: 10, signal: new AbortController().signal }));
      // The last token generated is never evaluated.
      assert.deepEqual(seq.heldTokens(), [...prompt, ...run.ids.slice(0, -1)], engine.info.engine);
      await seq.clear();
      assert.deepEqual(seq.heldTokens(), []);
    }
  });

  it("ends at once when the first token ends the text, and after one token when one is asked for", async () => {
    const seq = native.sequences[3]!;
    const prompt = native.tokenize(PROMPTS[0]!);
    await seq.prefill(prompt, new AbortController().signal);
    const one = await collect(seq.generate({ sampling: GREEDY, maxTokens: 1, signal: new AbortController().signal }));
    assert.deepEqual(one.ids, expected.get(PROMPTS[0]!)!.ids.slice(0, 1));
    assert.deepEqual(seq.heldTokens(), prompt);
    await seq.prefill(prompt, new AbortController().signal);
    const eos = await collect(seq.generate({ sampling: { temperature: 0, logit_bias: { "2": 100 } }, maxTokens: 10, signal: new AbortController().signal }));
    assert.deepEqual(eos.ids, []);
    assert.deepEqual(seq.heldTokens(), prompt);
    const again = await generate(native, seq, PROMPTS[0]!, 100);
    assert.deepEqual(again.ids, expected.get(PROMPTS[0]!)!.ids);
  });

  it("decodes four sequences in one batch, each exactly as it would alone", async () => {
    const runs = await Promise.all(PROMPTS.map((p, i) => generate(native, native.sequences[i]!, p, 100)));
    runs.forEach((run, i) => assert.deepEqual(run.ids, expected.get(PROMPTS[i]!)!.ids, PROMPTS[i]));
  });

  it("yields nothing after an abort, and the sequence keeps a consistent cache", async () => {
    const seq = native.sequences[1]!;
    const prompt = native.tokenize(PROMPTS[0]!);
    await seq.prefill(prompt, new AbortController().signal);
    const ac = new AbortController();
    const seen: number[] = [];
    for await (const t of seq.generate({ sampling: GREEDY, maxTokens: 100, signal: ac.signal })) {
      seen.push(t.id);
      if (seen.length === 5) ac.abort();
    }
    assert.equal(seen.length, 5);
    // Without a clear, a prefill of the prompt and the tokens seen reuses what the cache holds:
    // the prompt, and at most the tokens seen (the cancel took effect before more were evaluated).
    const next = [...prompt, ...seen, expected.get(PROMPTS[0]!)!.ids[5]!];
    const r = await seq.prefill(next, new AbortController().signal);
    assert.ok(r.reused >= prompt.length && r.reused <= prompt.length + seen.length, `reused ${r.reused}`);
    const rest = await collect(seq.generate({ sampling: GREEDY, maxTokens: 20, signal: new AbortController().signal }));
    assert.deepEqual(rest.ids, expected.get(PROMPTS[0]!)!.ids.slice(6, 26));
    await seq.clear();
  });

  it("pauses a sequence whose consumer stops pulling while another one runs to its end", async () => {
    const slow = native.sequences[0]!;
    const fast = native.sequences[1]!;
    await prefilled(native, slow, PROMPTS[1]!);
    const stream = slow.generate({ sampling: GREEDY, maxTokens: 100, signal: new AbortController().signal }) as TokenStream;
    const first = await stream.next();
    assert.equal(first.done, false);
    const other = await generate(native, fast, PROMPTS[2]!, 100);
    assert.deepEqual(other.ids, expected.get(PROMPTS[2]!)!.ids);
    // The paused sequence produced no more than its credit while the other generated 100 tokens.
    assert.ok(stream.ids.length <= 1 + 16, `paused sequence produced ${stream.ids.length} tokens`);
    const rest = await collect(stream);
    assert.deepEqual([(first.value as GeneratedToken).id, ...rest.ids], expected.get(PROMPTS[1]!)!.ids);
    await slow.clear();
  });

  it("reuses the longest common prefix of what the sequence holds", async () => {
    const seq = native.sequences[2]!;
    const a = await prefilled(native, seq, PROMPTS[0]!);
    assert.deepEqual(a, { evaluated: native.tokenize(PROMPTS[0]!).length, reused: 0 });
    const same = await prefilled(native, seq, PROMPTS[0]!);
    const n = native.tokenize(PROMPTS[0]!).length;
    assert.deepEqual(same, { evaluated: 1, reused: n - 1 });
    const longer = `${PROMPTS[0]!}, there was a dog`;
    // The whole first prompt is held (its last token was evaluated by the prefill).
    assert.deepEqual(native.tokenize(longer).slice(0, n), native.tokenize(PROMPTS[0]!));
    const b = await prefilled(native, seq, longer);
    assert.deepEqual(b, { evaluated: native.tokenize(longer).length - n, reused: n });
    const run = await collect(seq.generate({ sampling: GREEDY, maxTokens: 40, signal: new AbortController().signal }));
    await seq.clear();
    const fresh = await generate(reference, reference.sequences[0]!, longer, 40);
    assert.deepEqual(run.ids, fresh.ids);
  });

  it("keeps every sequence's output exact under many concurrent, randomly cancelled generations", async () => {
    const rng = createRng(7);
    await Promise.all(
      native.sequences.map(async (seq, i) => {
        for (let round = 0; round < 6; round++) {
          const p = PROMPTS[(i + round) % PROMPTS.length]!;
          const cut = rng.next() < 0.5 ? 1 + Math.floor(rng.next() * 60) : Infinity;
          await prefilled(native, seq, p);
          const ac = new AbortController();
          const run: number[] = [];
          for await (const t of seq.generate({ sampling: GREEDY, maxTokens: 80, signal: ac.signal })) {
            run.push(t.id);
            if (run.length === cut) ac.abort();
          }
          assert.deepEqual(run, expected.get(p)!.ids.slice(0, Math.min(cut, 80)), `seq ${i} round ${round}`);
          await seq.clear();
        }
      }),
    );
  });

  it("copies a prompt's KV from another sequence that holds it, and generates exactly what a fresh evaluation does", async () => {
    const prompt = PROMPTS[1]!;
    const tokens = native.tokenize(prompt);
    const donor = native.sequences[0]!;
    await donor.prefill(tokens, new AbortController().signal);
    const donorRun = donor.generate({ sampling: GREEDY, maxTokens: 100, signal: new AbortController().signal })[Symbol.asyncIterator]();
    await donorRun.next(); // the donor is generating while the others copy from it
    const copied = await native.sequences[2]!.prefill(tokens, new AbortController().signal);
    assert.deepEqual(copied, { evaluated: 1, reused: tokens.length - 1 });
    const run = await collect(native.sequences[2]!.generate({ sampling: GREEDY, maxTokens: 100, signal: new AbortController().signal }));
    assert.deepEqual(run.ids, expected.get(prompt)!.ids);
    // A longer prompt with the same beginning evaluates only what follows the shared tokens.
    const longer = native.tokenize(`${prompt}, Tom went to the park with his dog and his friend`);
    // The donors hold their prompt and what they generated since; the longest match counts.
    const commonWith = (held: readonly number[]) => {
      let k = 0;
      while (k < held.length && k + 1 < longer.length && longer[k] === held[k]) k++;
      return k;
    };
    const common = Math.max(commonWith(native.sequences[0]!.heldTokens()), commonWith(native.sequences[2]!.heldTokens()));
    assert.ok(common >= tokens.length - 1);
    const extended = await native.sequences[3]!.prefill(longer, new AbortController().signal);
    assert.equal(extended.reused, common);
    const fresh = await collect(native.sequences[3]!.generate({ sampling: GREEDY, maxTokens: 30, signal: new AbortController().signal }));
    await donorRun.return!();
    for (const i of [0, 2, 3]) await native.sequences[i]!.clear();
    const alone = await reference.sequences[0]!.prefill(longer, new AbortController().signal).then(() =>
      collect(reference.sequences[0]!.generate({ sampling: GREEDY, maxTokens: 30, signal: new AbortController().signal })));
    await reference.sequences[0]!.clear();
    assert.deepEqual(fresh.ids, alone.ids);
  });

  it("reports logprobs without changing what is sampled: greedy picks the top entry, penalties and seeds sample the same", async () => {
    const seq = native.sequences[1]!;
    const greedy = await generate(native, seq, PROMPTS[2]!, 20, { temperature: 0, top_logprobs: 3 });
    assert.deepEqual(greedy.ids, expected.get(PROMPTS[2]!)!.ids.slice(0, 20));
    const sampled: SamplingParams = { temperature: 0.9, seed: 5, presence_penalty: 1, frequency_penalty: 0.5, repeat_penalty: 1.2 };
    const plain = await generate(native, seq, PROMPTS[3]!, 30, sampled);
    await seq.prefill(native.tokenize(PROMPTS[3]!), new AbortController().signal);
    const tokens: GeneratedToken[] = [];
    for await (const t of seq.generate({ sampling: { ...sampled, top_logprobs: 4 }, maxTokens: 30, signal: new AbortController().signal })) tokens.push(t);
    await seq.clear();
    assert.deepEqual(tokens.map((t) => t.id), plain.ids);
    for (const t of tokens) {
      const lp = t.logprobs!;
      assert.equal(lp.id, t.id);
      assert.equal(lp.top.length, 4);
      assert.ok(lp.logprob <= 0);
      for (let i = 1; i < lp.top.length; i++) assert.ok(lp.top[i - 1]!.logprob >= lp.top[i]!.logprob);
      const own = lp.top.find((e) => e.id === t.id);
      if (own !== undefined) assert.ok(Math.abs(own.logprob - lp.logprob) < 1e-5);
    }
  });

  it("samples reproducibly with a seed and honours logit bias", async () => {
    const s: SamplingParams = { temperature: 0.9, seed: 1234, top_k: 20 };
    const a = await generate(native, native.sequences[0]!, PROMPTS[0]!, 40, s);
    const b = await generate(native, native.sequences[0]!, PROMPTS[0]!, 40, s);
    assert.deepEqual(a.ids, b.ids);
    const banned = expected.get(PROMPTS[0]!)!.ids[0]!;
    const biased = await generate(native, native.sequences[0]!, PROMPTS[0]!, 5, { temperature: 0, logit_bias: { [String(banned)]: -100 } });
    assert.notEqual(biased.ids[0], banned);
  });

  it("follows a grammar, and refuses one that does not parse as the client's error", async () => {
    const run = await generate(native, native.sequences[0]!, PROMPTS[0]!, 30, { temperature: 0, grammar: 'root ::= " the" (" the" | " a")*' });
    // Tokens may split a word: the text is whole words, then possibly the start of one.
    assert.match(run.text, /^( the| a)+( | t| th)?$/);
    await assert.rejects(native.validateSampling!({ grammar: "root ::= (" }), { code: "invalid_grammar" });
    await native.validateSampling!({ json_schema: { type: "object", properties: { n: { type: "number" } } } });
  });
});

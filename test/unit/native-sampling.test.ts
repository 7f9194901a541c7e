import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { nativeSampling } from "../../src/engine/native-sampling.js";
import type { SamplingParams } from "../../src/protocol/sampling.js";

describe("a request's sampling as the native sampler takes it", () => {
  const defaults = {
    temperature: 0.8, topK: 40, topP: 0.95, minP: 0, penaltyLastN: 64, repeatPenalty: 1, presencePenalty: 0, frequencyPenalty: 0,
  };
  const cases: { name: string; input: SamplingParams; grammar?: string; expected: Record<string, unknown> }[] = [
    { name: "nothing asked takes node-llama-cpp's defaults", input: {}, expected: defaults },
    { name: "temperature 0 is kept (greedy)", input: { temperature: 0 }, expected: { ...defaults, temperature: 0 } },
    { name: "top_k -1 means the whole vocabulary", input: { top_k: -1 }, expected: { ...defaults, topK: 0 } },
    { name: "top_k 0 means the whole vocabulary", input: { top_k: 0 }, expected: { ...defaults, topK: 0 } },
    {
      name: "every field is passed on",
      input: { temperature: 1.2, top_k: 5, top_p: 0.5, min_p: 0.1, repeat_penalty: 1.3, presence_penalty: 0.5, frequency_penalty: -0.5 },
      expected: { ...defaults, temperature: 1.2, topK: 5, topP: 0.5, minP: 0.1, repeatPenalty: 1.3, presencePenalty: 0.5, frequencyPenalty: -0.5 },
    },
    { name: "a negative seed wraps to 32 bits", input: { seed: -1 }, expected: { ...defaults, seed: 4294967295 } },
    { name: "a large seed keeps its low 32 bits", input: { seed: 2 ** 32 + 7 }, expected: { ...defaults, seed: 7 } },
    { name: "top_logprobs asks the sampler for logprobs", input: { top_logprobs: 5 }, expected: { ...defaults, topLogprobs: 5 } },
    { name: "top_logprobs 0 still asks for the chosen token's", input: { top_logprobs: 0 }, expected: { ...defaults, topLogprobs: 0 } },
    { name: "a grammar is passed as GBNF", input: { grammar: "root ::= \"a\"" }, grammar: "root ::= \"a\"", expected: { ...defaults, grammar: "root ::= \"a\"" } },
  ];
  for (const c of cases) {
    it(c.name, () => assert.deepEqual({ ...nativeSampling(c.input, c.grammar) }, c.expected));
  }

  it("logit bias becomes parallel typed arrays", () => {
    const s = nativeSampling({ logit_bias: { "2": -100, "17": 2.5 } }, undefined);
    assert.deepEqual(Array.from(s.biasTokens!), [2, 17]);
    assert.deepEqual(Array.from(s.biasValues!), [-100, 2.5]);
  });
});

describe("tokens banned under a grammar", () => {
  it("are banned unless the request's logit bias names them", () => {
    const s = nativeSampling({ logit_bias: { "5": 3 } }, "root ::= \"a\"", [1, 5, 9]);
    assert.deepEqual(Array.from(s.biasTokens!), [1, 5, 9]);
    assert.deepEqual(Array.from(s.biasValues!), [-100, 3, -100]);
  });
});

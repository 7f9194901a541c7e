import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../src/common/config-parse.js";
import { checkWorkerConfig } from "../../src/common/config.js";
import { httpStatusOf } from "../../src/protocol/error-mapping.js";
import { ServingError } from "../../src/protocol/serving-error.js";
import { buildVocab } from "../../src/engine/gguf-writer.js";
import { checkGrammarCoverage, grammarCharacters } from "../../src/engine/grammar-coverage.js";
import { nativeErrorToServing } from "../../src/engine/native-errors.js";
import { nativeSampling } from "../../src/engine/native-sampling.js";
import { MIN_REPEAT_PENALTY, MIN_TEMPERATURE, boundedSampling } from "../../src/engine/sampling-bounds.js";
import { VocabularyCoverage } from "../../src/engine/vocabulary-coverage.js";
import { MAX_GRAMMAR_DEPTH, MAX_GRAMMAR_ELEMENTS, MAX_GRAMMAR_RULES, checkGrammarLimits, grammarShape } from "../../src/protocol/grammar-limits.js";

/** The checks that run in TypeScript before any native code sees a request. */
const noBytes = new VocabularyCoverage({ model: "llama", ...buildVocab({ vocabSize: 400, byteTokens: false }) });
const withBytes = new VocabularyCoverage({ model: "llama", ...buildVocab({ vocabSize: 400 }) });

function refusal(f: () => void): ServingError {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof ServingError, String(err));
    return err;
  }
  assert.fail("expected a refusal");
}

describe("vocabulary coverage", () => {
  it("finds the first character a vocabulary without byte tokens lacks, as U+XXXX and its offset", () => {
    const table: [string, string | undefined, number | undefined][] = [
      ["Once upon a time", undefined, undefined],
      ["Once upon a time # café", "U+00E9", 22],
      ["a\u0000b", "U+0000", 1],
      ["tab\there", "U+0009", 3],
      ["x😀y", "U+1F600", 1],
      ["ab\ud800", "U+D800", 2],
      ["line\nnext", undefined, undefined],
      ["", undefined, undefined],
    ];
    for (const [text, cp, offset] of table) {
      const bad = noBytes.firstUncovered(text);
      assert.equal(bad?.codePoint, cp, JSON.stringify(text));
      assert.equal(bad?.offset, offset, JSON.stringify(text));
    }
  });

  it("covers every text when all 256 byte tokens exist, or for tokenizers that never throw", () => {
    assert.equal(withBytes.complete, true);
    assert.equal(withBytes.firstUncovered("café 😀 \u0000 \ud800"), undefined);
    const bpe = new VocabularyCoverage({ model: "gpt2", tokens: ["a", "b"] });
    assert.equal(bpe.firstUncovered("é"), undefined);
  });

  it("counts a character covered when each of its UTF-8 bytes has a byte token", () => {
    const partial = new VocabularyCoverage({ model: "llama", tokens: ["a", "<0xC3>", "<0xA9>"], types: [1, 6, 6] });
    assert.equal(partial.firstUncovered("aé"), undefined);
    assert.equal(partial.firstUncovered("aè")?.codePoint, "U+00E8");
  });

  it("refuses with 400 unsupported_characters, naming the character and offset", () => {
    const err = refusal(() => noBytes.check("Once upon a time # café", 512, "the prompt", "prompt"));
    assert.equal(err.code, "unsupported_characters");
    assert.equal(httpStatusOf(err.code), 400);
    assert.equal(err.message, "the prompt holds U+00E9 at offset 22, which the model's vocabulary cannot represent (it has no byte-fallback tokens)");
    assert.deepEqual(err.details, { character: "U+00E9", offset: 22 });
    assert.equal(err.param, "prompt");
  });

  it("bounds a text's tokens from below by its bytes over the longest token's bytes", () => {
    const v = new VocabularyCoverage({ model: "llama", tokens: ["<unk>", "<s>", "ab", "▁abcd", "a"], types: [2, 3, 1, 1, 1] });
    assert.equal(v.longestTokenBytes, 7, "▁ is 3 bytes; control tokens do not count");
    assert.equal(v.minTokens(""), 0);
    assert.equal(v.minTokens("a".repeat(7)), 1);
    assert.equal(v.minTokens("a".repeat(8)), 2);
    assert.equal(v.minTokens("é".repeat(7)), 2);
    v.check("a".repeat(70), 10, "the prompt", "prompt");
    const err = refusal(() => v.check("a".repeat(71), 10, "the prompt", "prompt"));
    assert.equal(err.code, "context_length_exceeded");
    assert.equal(httpStatusOf(err.code), 400);
    assert.equal(err.message, "the prompt is 71 bytes, at least 11 tokens (the longest token is 7 bytes); the context holds 10");
  });
});

describe("grammar limits", () => {
  it("measures nesting depth, rules and expanded elements, ignoring literals, classes and comments", () => {
    const table: [string, { depth: number; rules: number; elements: number }][] = [
      ['root ::= "a"', { depth: 0, rules: 1, elements: 2 }],
      ['root ::= ("a" ("b" | c))\nc ::= [x-z]', { depth: 2, rules: 2, elements: 6 }],
      ['root ::= "((((" [(((] # ((((\n', { depth: 0, rules: 1, elements: 3 }],
      ['root ::= "a"{3}', { depth: 0, rules: 1, elements: 4 }],
      ['root ::= ("a" "b"){2,5}', { depth: 1, rules: 1, elements: 11 }],
      ['root ::= "\\"(" x', { depth: 0, rules: 1, elements: 3 }],
    ];
    for (const [g, shape] of table) assert.deepEqual(grammarShape(g), shape, g);
  });

  it("refuses a grammar past each limit with 400 invalid_grammar", () => {
    const deep = `root ::= ${"(".repeat(32_000)}"a"${")".repeat(32_000)}`;
    const ok = `root ::= ${"(".repeat(MAX_GRAMMAR_DEPTH)}"a"${")".repeat(MAX_GRAMMAR_DEPTH)}`;
    checkGrammarLimits(ok, "grammar");
    const cases: [string, RegExp][] = [
      [deep, new RegExp(`nests deeper than ${MAX_GRAMMAR_DEPTH} levels`)],
      [Array.from({ length: MAX_GRAMMAR_RULES + 1 }, (_, i) => `r${i} ::= "a"`).join("\n"), new RegExp(`more than ${MAX_GRAMMAR_RULES} rules`)],
      ['root ::= (("a"{1000}){1000})', new RegExp(`more than ${MAX_GRAMMAR_ELEMENTS} elements`)],
    ];
    for (const [g, message] of cases) {
      const err = refusal(() => checkGrammarLimits(g, "grammar"));
      assert.equal(err.code, "invalid_grammar");
      assert.equal(httpStatusOf(err.code), 400);
      assert.match(err.message, message);
      assert.equal(err.param, "grammar");
    }
  });

  it("measures a 64 KiB grammar in well under a second", () => {
    const t0 = performance.now();
    grammarShape(`root ::= ${"(".repeat(32_000)}${")".repeat(32_000)}`);
    grammarShape(`root ::= ${'"a" '.repeat(16_000)}`);
    assert.ok(performance.now() - t0 < 1000);
  });
});

describe("grammar coverage", () => {
  it("reads a grammar's literals and non-negated classes, unescaping characters", () => {
    const g = grammarCharacters('root ::= "a\\"b\\u00e9" [x-z\\]] [^q] # "c"\nx ::= "\\x00"');
    assert.deepEqual(g.literals, ['a"bé', "\u0000"]);
    assert.deepEqual(g.classes, [["x", "z", "]"]]);
  });

  it("refuses a grammar demanding a character no token yields (uncovered, or NUL) with unsupported_characters", () => {
    checkGrammarCoverage('root ::= "Once" [a-z]+ [^é]', noBytes, "grammar");
    checkGrammarCoverage('root ::= "café"', withBytes, "grammar");
    const cases: [string, VocabularyCoverage, string][] = [
      ['root ::= "café"', noBytes, "U+00E9"],
      ['root ::= "a" [éè]', noBytes, "U+00E9"],
      ['root ::= "\\x00"', withBytes, "U+0000"],
    ];
    for (const [g, coverage, cp] of cases) {
      const err = refusal(() => checkGrammarCoverage(g, coverage, "grammar"));
      assert.equal(err.code, "unsupported_characters", g);
      assert.equal(err.message, `'grammar' requires ${cp}, which no token of the model's vocabulary can produce`);
    }
  });
});

describe("native sampling", () => {
  it("reads a temperature below MIN_TEMPERATURE as greedy (its probabilities would all be NaN)", () => {
    assert.equal(nativeSampling({ temperature: 1.41e-39 }, undefined).temperature, 0);
    assert.equal(nativeSampling({ temperature: MIN_TEMPERATURE / 2 }, undefined).temperature, 0);
    assert.equal(nativeSampling({ temperature: 0.5 }, undefined).temperature, 0.5);
    assert.equal(nativeSampling({}, undefined).temperature, 0.8);
  });

  it("raises a repeat penalty near 0 to MIN_REPEAT_PENALTY (dividing by it would overflow), for both engines", () => {
    assert.deepEqual(boundedSampling({ repeat_penalty: 9.6e-213, temperature: 2 }), { repeat_penalty: MIN_REPEAT_PENALTY, temperature: 2 });
    assert.deepEqual(boundedSampling({ repeat_penalty: 0.5, temperature: 1e-40 }), { repeat_penalty: 0.5, temperature: 0 });
    assert.deepEqual(boundedSampling({}), {});
    assert.equal(nativeSampling({ repeat_penalty: 0 }, undefined).repeatPenalty, MIN_REPEAT_PENALTY);
  });
});

describe("native errors", () => {
  it("maps the addon's codes: the client's faults to 400s, anything else to internal", () => {
    const coded = (code: string) => Object.assign(new Error("m"), { code });
    assert.equal(nativeErrorToServing(coded("unsupported_characters")).code, "unsupported_characters");
    assert.equal(nativeErrorToServing(coded("invalid_grammar")).code, "invalid_grammar");
    assert.equal(nativeErrorToServing(coded("grammar_dead_end")).code, "grammar_dead_end");
    assert.equal(nativeErrorToServing(coded("engine_failed")).code, "internal");
    assert.equal(nativeErrorToServing(new Error("x")).code, "internal");
    assert.equal(nativeErrorToServing("x").code, "internal");
  });
});

describe("worker configuration checks", () => {
  it("refuses PARALLEL greater than BATCH_SIZE, naming both", () => {
    checkWorkerConfig({ parallel: 4, batchSize: 4 });
    checkWorkerConfig({ parallel: "auto", batchSize: 8 });
    assert.throws(() => checkWorkerConfig({ parallel: 8, batchSize: 4 }), (e: unknown) =>
      e instanceof ConfigError && /^PARALLEL \(--parallel\) 8 exceeds BATCH_SIZE \(--batch-size\) 4/.test(e.message));
    assert.throws(() => checkWorkerConfig({ parallel: "auto", batchSize: 4 }), /PARALLEL \(--parallel\) auto \(8\) exceeds BATCH_SIZE/);
  });
});

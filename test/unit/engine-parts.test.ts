import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import { chooseParallel, chooseThreads, TINY_MODEL_BYTES } from "../../src/engine/engine-tuning.js";
import { float32ToFloat16 } from "../../src/engine/float16.js";
import { buildVocab, writeLlamaGguf } from "../../src/engine/gguf-writer.js";
import { IncrementalDetokenizer } from "../../src/engine/incremental-detokenizer.js";
import { modelIdFromPath } from "../../src/engine/model-source.js";

describe("thread choice", () => {
  const table: [string, Parameters<typeof chooseThreads>[0], number][] = [
    ["tiny models get one thread", { requested: "auto", cores: 2, localWorkers: 1, modelBytes: 1_200_000, force: false }, 1],
    ["larger models share the cores among local workers", { requested: "auto", cores: 8, localWorkers: 2, modelBytes: TINY_MODEL_BYTES, force: false }, 4],
    ["never fewer than one", { requested: "auto", cores: 2, localWorkers: 4, modelBytes: 1e9, force: false }, 1],
    ["an explicit count that fits", { requested: 2, cores: 2, localWorkers: 1, modelBytes: 1e9, force: false }, 2],
    ["an oversubscribed count when forced", { requested: 4, cores: 2, localWorkers: 1, modelBytes: 1e9, force: true }, 4],
  ];
  for (const [name, input, expected] of table) it(name, () => assert.equal(chooseThreads(input), expected));

  it("refuses to oversubscribe the cores unless forced", () => {
    assert.throws(() => chooseThreads({ requested: 2, cores: 2, localWorkers: 2, modelBytes: 1e9, force: false }), /exceeds the 2 cores/);
  });

  it("defaults to 8 parallel sequences", () => {
    assert.equal(chooseParallel("auto"), 8);
    assert.equal(chooseParallel(3), 3);
  });
});

describe("float16", () => {
  const table: [number, number][] = [[0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [1e6, 0x7c00], [5.960464477539063e-8, 0x0001], [1e-9, 0x0000], [NaN, 0x7e00], [0.1, 0x2e66]];
  for (const [x, bits] of table) it(`${x} → 0x${bits.toString(16)}`, () => assert.equal(float32ToFloat16(x), bits));
});

describe("GGUF writer", () => {
  it("writes a llama model that GGUF readers accept", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gguf-"));
    try {
      const path = join(dir, "t.gguf");
      await writeLlamaGguf(path, {
        name: "t", dim: 32, layers: 2, heads: 4, kvHeads: 2, ffn: 48, contextLength: 256, vocabSize: 400,
        words: ["hello", "world"], fileType: "f16", tiedEmbeddings: false, seed: 1,
      });
      const info = await readGgufFileInfo(path);
      const meta = info.metadata as unknown as { general: { architecture: string }; llama: { block_count: number; attention: { head_count_kv: number } }; tokenizer: { ggml: { tokens: string[] } } };
      assert.equal(meta.general.architecture, "llama");
      assert.equal(meta.llama.block_count, 2);
      assert.equal(meta.llama.attention.head_count_kv, 2);
      assert.equal(meta.tokenizer.ggml.tokens.length, 400);
      assert.equal(info.tensorInfo!.length, 3 + 2 * 9);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("builds a vocabulary of the asked size with specials and byte tokens first", () => {
    const v = buildVocab({ vocabSize: 1000, words: ["cat"] });
    assert.equal(v.tokens.length, 1000);
    assert.deepEqual(v.tokens.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
    assert.equal(new Set(v.tokens).size, 1000);
    assert.ok(v.tokens.includes("▁cat"));
  });

  it("derives a model id from the file name", () => {
    assert.equal(modelIdFromPath("/m/TinyLlama-1.1B.Q4_K_M.gguf"), "TinyLlama-1.1B.Q4_K_M");
    assert.equal(modelIdFromPath("/x/models/.demo/demo-llama-v1.gguf"), "demo");
  });
});

describe("IncrementalDetokenizer", () => {
  // Token ids stand for UTF-8 bytes here; an incomplete character decodes to U+FFFD, as llama.cpp does.
  const decode = (tokens: readonly number[]) => Buffer.from(tokens).toString("utf8");
  it("holds tokens until a multi-byte character completes", () => {
    const d = new IncrementalDetokenizer((t) => decode(t));
    const bytes = [...Buffer.from("aé€b")];
    const out = bytes.map((b) => d.push(b));
    assert.deepEqual(out, ["a", "", "é", "", "", "€", "b"]);
    assert.equal(out.join(""), "aé€b");
  });

  it("gives up holding after four tokens", () => {
    const d = new IncrementalDetokenizer((t) => decode(t));
    const out = [0xe2, 0xe2, 0xe2, 0xe2].map((b) => d.push(b));
    assert.equal(out.slice(0, 3).join(""), "");
    assert.ok(out[3]!.length > 0);
  });

  it("passes the last emitted tokens as context", () => {
    const seen: number[][] = [];
    const d = new IncrementalDetokenizer((t, ctx) => (seen.push([...ctx]), "x"), [1, 2, 3, 4, 5]);
    d.push(6);
    d.push(7);
    assert.deepEqual(seen, [[2, 3, 4, 5], [3, 4, 5, 6]]);
  });
});

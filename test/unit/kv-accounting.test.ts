import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { flattenMetadata, kvBytesPerToken, kvShapeFromMetadata } from "../../src/engine/kv-accounting.js";

describe("KV accounting", () => {
  const cases: { name: string; meta: Record<string, unknown>; bytes: number }[] = [
    // stories260K: 5 layers, n_embd 64, 8 heads, 4 KV heads → head dim 8: 2 × 5 × 4 × 8 × 2 = 640
    { name: "stories260K (GQA)", meta: { "general.architecture": "llama", "llama.block_count": 5, "llama.embedding_length": 64, "llama.attention.head_count": 8, "llama.attention.head_count_kv": 4 }, bytes: 640 },
    // TinyLlama 1.1B: 22 layers, 2048 embd, 32 heads, 4 KV heads → 2 × 22 × 4 × 64 × 2 = 22528
    { name: "TinyLlama 1.1B", meta: { "general.architecture": "llama", "llama.block_count": 22, "llama.embedding_length": 2048, "llama.attention.head_count": 32, "llama.attention.head_count_kv": 4 }, bytes: 22528 },
    { name: "no KV heads given means MHA", meta: { "general.architecture": "llama", "llama.block_count": 1, "llama.embedding_length": 8, "llama.attention.head_count": 2 }, bytes: 2 * 1 * 2 * 4 * 2 },
    { name: "explicit key/value lengths", meta: { "general.architecture": "qwen3", "qwen3.block_count": 2, "qwen3.embedding_length": 1024, "qwen3.attention.head_count": 16, "qwen3.attention.head_count_kv": 8, "qwen3.attention.key_length": 128, "qwen3.attention.value_length": 128 }, bytes: 2 * 8 * 256 * 2 },
    { name: "per-layer KV heads take the largest", meta: { "general.architecture": "llama", "llama.block_count": 2, "llama.embedding_length": 16, "llama.attention.head_count": 4, "llama.attention.head_count_kv": [1, 4] }, bytes: 2 * 4 * 8 * 2 },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(kvBytesPerToken(kvShapeFromMetadata(c.meta)), c.bytes));
  }

  it("takes bytes per element of the cache type", () => {
    const shape = { layers: 2, kvHeads: 2, keyLength: 4, valueLength: 4 };
    assert.equal(kvBytesPerToken(shape, 4), 2 * 2 * 8 * 4);
  });

  it("fails clearly on metadata without the shape", () => {
    assert.throws(() => kvShapeFromMetadata({ "general.architecture": "llama" }), /block_count/);
  });

  it("flattens node-llama-cpp's nested metadata", () => {
    assert.deepEqual(flattenMetadata({ general: { architecture: "llama" }, llama: { attention: { head_count: 8 } }, t: [1, 2] }), {
      "general.architecture": "llama", "llama.attention.head_count": 8, t: [1, 2],
    });
  });
});

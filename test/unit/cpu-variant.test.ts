import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AVX2_PREFERENCE, dominantWeightType, preferredCpuVariants, rowLengthsFromMetadata } from "../../src/engine/cpu-variant.js";

describe("the CPU backend build the native engine prefers", () => {
  const cases: { name: string; shape: Parameters<typeof preferredCpuVariants>[0]; arch?: string; expected: readonly string[] }[] = [
    { name: "F32 rows of 288 and heads of 48 prefer AVX2", shape: { weightType: "f32", rowLengths: [288, 768, 48] }, expected: AVX2_PREFERENCE },
    { name: "F32 rows of 64, 172 and 8 prefer AVX2", shape: { weightType: "f32", rowLengths: [64, 172, 8] }, expected: AVX2_PREFERENCE },
    { name: "F16 rows all multiples of 64 keep ggml's choice", shape: { weightType: "f16", rowLengths: [768, 2048, 64] }, expected: [] },
    { name: "F16 with a head of 80 prefers AVX2", shape: { weightType: "f16", rowLengths: [2560, 10240, 80] }, expected: AVX2_PREFERENCE },
    { name: "quantized weights keep ggml's choice", shape: { weightType: "quantized", rowLengths: [288, 768, 48] }, expected: [] },
    { name: "other architectures keep ggml's choice", shape: { weightType: "f32", rowLengths: [288] }, arch: "arm64", expected: [] },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(preferredCpuVariants(c.shape, c.arch ?? "x64"), c.expected));

  it("takes the weight type that holds most parameters", () => {
    assert.equal(dominantWeightType([{ ggmlType: 0, dimensions: [64] }, { ggmlType: 1, dimensions: [768, 768] }]), "f16");
    assert.equal(dominantWeightType([{ ggmlType: 0, dimensions: [288, 32000] }, { ggmlType: 1, dimensions: [8, 8] }]), "f32");
    assert.equal(dominantWeightType([{ ggmlType: 0, dimensions: [4096] }, { ggmlType: 12, dimensions: [4096n, 4096n] }]), "quantized");
  });

  it("reads the row lengths from GGUF metadata, head size included", () => {
    const meta = { "general.architecture": "llama", "llama.embedding_length": 288, "llama.feed_forward_length": 768, "llama.attention.head_count": 6 };
    assert.deepEqual(rowLengthsFromMetadata(meta), [288, 768, 48]);
    assert.deepEqual(rowLengthsFromMetadata({ ...meta, "llama.attention.key_length": 64, "llama.attention.value_length": 64 }), [288, 768, 64, 64, 48]);
  });
});

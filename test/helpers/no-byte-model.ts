import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeLlamaGguf } from "../../src/engine/gguf-writer.js";

/**
 * A tiny random-weight llama GGUF whose SentencePiece vocabulary has no byte-fallback tokens, like
 * some published TinyStories models: it covers printable ASCII and the newline only, so llama.cpp's
 * tokenizer throws on any other character (e.g. "é").
 */
export async function writeNoByteModel(): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), "no-byte-model-")), "no-byte.gguf");
  await writeLlamaGguf(path, {
    name: "no-byte", dim: 64, layers: 1, heads: 4, kvHeads: 4, ffn: 128, contextLength: 512, vocabSize: 400,
    fileType: "f32", tiedEmbeddings: true, seed: 1, byteTokens: false,
  });
  return path;
}

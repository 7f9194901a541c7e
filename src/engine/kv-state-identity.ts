import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { KvShape } from "./kv-accounting.js";

/**
 * Who may load a saved sequence state: a state is llama.cpp's KV bytes for one model, one engine
 * build and one context shape, and loading it anywhere else would give wrong attention silently
 * (llama.cpp checks cell counts and row sizes, not which weights made them). The identity is a
 * sha256 over the parts below; a tier file or a transfer carries it and is refused on any mismatch.
 */
export interface KvStateParts {
  /** modelFileIdentity() of the GGUF file. */
  model: string;
  /** Engine and llama.cpp build, e.g. "native/llama.cpp v0.4.0". */
  engine: string;
  /** Tokens per sequence. */
  contextSize: number;
  kvLayout: KvShape;
}

export function kvStateIdentity(p: KvStateParts): string {
  const l = p.kvLayout;
  const text = `model=${p.model};engine=${p.engine};ctx=${p.contextSize};kv=${l.layers}x${l.kvHeads}x${l.keyLength}x${l.valueLength}`;
  return createHash("sha256").update(text).digest("hex");
}

/** Bytes hashed from the head of the file (header, metadata, first tensors). */
const HEAD_BYTES = 1 << 20;
/** Further samples spread over the weights: a model rewritten with other weights differs there. */
const SAMPLES = 32;
const SAMPLE_BYTES = 64 << 10;

/**
 * A model file's identity: its size and a sha256 of its first MiB plus 32 samples of 64 KiB spread
 * evenly over the rest (about 3 MiB read whatever the size: a worker start does not pay a full hash
 * of a GB file). Two files with the same size, header and samples are taken as the same model.
 */
export function modelFileIdentity(path: string): string {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const hash = createHash("sha256").update(`size=${size};`);
    const read = (offset: number, length: number) => {
      const buf = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
      if (buf.length > 0) readSync(fd, buf, 0, buf.length, offset);
      hash.update(buf);
    };
    read(0, HEAD_BYTES);
    if (size > HEAD_BYTES) {
      const stride = Math.max(SAMPLE_BYTES, Math.floor((size - HEAD_BYTES) / SAMPLES));
      for (let off = HEAD_BYTES; off < size; off += stride) read(off, SAMPLE_BYTES);
    }
    return `${size}:${hash.digest("hex").slice(0, 32)}`;
  } finally {
    closeSync(fd);
  }
}

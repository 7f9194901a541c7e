import { open, rename, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { createRng, type Rng } from "../common/rng.js";
import { float32ToFloat16 } from "./float16.js";

/**
 * Writes llama-architecture GGUF files (format v3) with random weights and a SentencePiece-style
 * vocabulary: the built-in demo model, and models of realistic dimensions for benchmarks. Random
 * weights run exactly as fast as trained ones of the same shape; their text is meaningless.
 */
export interface LlamaSpec {
  name: string;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  contextLength: number;
  /** Vocabulary: word pieces first, then generated pieces up to `vocabSize`. */
  vocabSize: number;
  words?: readonly string[];
  /**
   * The 256 byte-fallback pieces `<0x00>`…`<0xFF>` (default true). Without them, as in some
   * published models, text with a character the vocabulary lacks cannot be tokenized at all: tests
   * use such a model to check that the worker refuses it instead of crashing.
   */
  byteTokens?: boolean;
  fileType: "f32" | "f16";
  /** Share the output projection with the token embeddings. */
  tiedEmbeddings: boolean;
  seed: number;
  /** `tokenizer.chat_template` (Jinja), absent: none. */
  chatTemplate?: string;
  /** Control tokens after `<unk> <s> </s>` (e.g. `<|im_start|>`): their text tokenizes as one token. */
  controlTokens?: readonly string[];
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
const GGUF_VERSION = 3;
const ALIGNMENT = 32;
enum V { U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9 }
const GGML_F32 = 0;
const GGML_F16 = 1;
const TOKEN_NORMAL = 1, TOKEN_UNKNOWN = 2, TOKEN_CONTROL = 3, TOKEN_BYTE = 6;

type MetaValue = { t: V.U32 | V.I32 | V.F32; v: number } | { t: V.BOOL; v: boolean } | { t: V.STRING; v: string }
  | { t: V.ARRAY; of: V.STRING; v: string[] } | { t: V.ARRAY; of: V.F32 | V.I32; v: number[] };

interface TensorSpec {
  name: string;
  /** GGML order: fastest-varying dimension first. */
  dims: number[];
  type: number;
  init: "ones" | "random";
}

export function buildVocab(spec: Pick<LlamaSpec, "vocabSize" | "words" | "byteTokens" | "controlTokens">): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL];
  for (const c of spec.controlTokens ?? []) {
    tokens.push(c);
    types.push(TOKEN_CONTROL);
  }
  for (let b = 0; spec.byteTokens !== false && b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TOKEN_BYTE);
  }
  const seen = new Set(tokens);
  const add = (piece: string) => {
    if (tokens.length >= spec.vocabSize || seen.has(piece)) return;
    seen.add(piece);
    tokens.push(piece);
    types.push(TOKEN_NORMAL);
  };
  const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\"-:;()";
  add("▁");
  for (const c of chars) add(c);
  // Without byte tokens nothing else could stand for the rest of printable ASCII and the newline
  // (node-llama-cpp tokenizes "\n" when it loads a model): only characters past ASCII are missing.
  if (spec.byteTokens === false) for (let b = 0x21; b < 0x7f; b++) add(String.fromCharCode(b));
  if (spec.byteTokens === false) add("\n");
  for (const c of chars) add("▁" + c);
  for (const w of spec.words ?? []) add("▁" + w);
  // Fill the rest with generated letter pieces, with and without the word-start mark.
  const letters = "etaoinshrdlucmfwypvbgkjqxz";
  for (let n = 0; tokens.length < spec.vocabSize; n++) {
    let piece = "";
    for (let k = n; ; k = Math.floor(k / letters.length) - 1) {
      piece = letters[k % letters.length] + piece;
      if (k < letters.length) break;
    }
    if (piece.length < 2) continue;
    add("▁" + piece);
    add(piece);
  }
  // Longer pieces score higher, so the tokenizer prefers whole words.
  const scores = tokens.map((t, i) => (types[i] === TOKEN_NORMAL ? -1000 + t.length * 10 - i * 1e-4 : 0));
  return { tokens, scores, types };
}

function tensorsOf(spec: LlamaSpec): TensorSpec[] {
  const wt = spec.fileType === "f16" ? GGML_F16 : GGML_F32;
  const headDim = spec.dim / spec.heads;
  const kvDim = headDim * spec.kvHeads;
  const t: TensorSpec[] = [
    { name: "token_embd.weight", dims: [spec.dim, spec.vocabSize], type: wt, init: "random" },
    { name: "output_norm.weight", dims: [spec.dim], type: GGML_F32, init: "ones" },
  ];
  if (!spec.tiedEmbeddings) t.push({ name: "output.weight", dims: [spec.dim, spec.vocabSize], type: wt, init: "random" });
  for (let l = 0; l < spec.layers; l++) {
    const p = `blk.${l}.`;
    t.push(
      { name: p + "attn_norm.weight", dims: [spec.dim], type: GGML_F32, init: "ones" },
      { name: p + "attn_q.weight", dims: [spec.dim, spec.dim], type: wt, init: "random" },
      { name: p + "attn_k.weight", dims: [spec.dim, kvDim], type: wt, init: "random" },
      { name: p + "attn_v.weight", dims: [spec.dim, kvDim], type: wt, init: "random" },
      { name: p + "attn_output.weight", dims: [spec.dim, spec.dim], type: wt, init: "random" },
      { name: p + "ffn_norm.weight", dims: [spec.dim], type: GGML_F32, init: "ones" },
      { name: p + "ffn_gate.weight", dims: [spec.dim, spec.ffn], type: wt, init: "random" },
      { name: p + "ffn_down.weight", dims: [spec.ffn, spec.dim], type: wt, init: "random" },
      { name: p + "ffn_up.weight", dims: [spec.dim, spec.ffn], type: wt, init: "random" },
    );
  }
  return t;
}

function metadataOf(spec: LlamaSpec): [string, MetaValue][] {
  if (spec.dim % spec.heads !== 0 || spec.heads % spec.kvHeads !== 0) throw new Error("dim must divide by heads, heads by kvHeads");
  const vocab = buildVocab(spec);
  return [
    ["general.architecture", { t: V.STRING, v: "llama" }],
    ["general.name", { t: V.STRING, v: spec.name }],
    ["general.file_type", { t: V.U32, v: spec.fileType === "f16" ? 1 : 0 }],
    ["general.alignment", { t: V.U32, v: ALIGNMENT }],
    ["llama.context_length", { t: V.U32, v: spec.contextLength }],
    ["llama.embedding_length", { t: V.U32, v: spec.dim }],
    ["llama.block_count", { t: V.U32, v: spec.layers }],
    ["llama.feed_forward_length", { t: V.U32, v: spec.ffn }],
    ["llama.rope.dimension_count", { t: V.U32, v: spec.dim / spec.heads }],
    ["llama.attention.head_count", { t: V.U32, v: spec.heads }],
    ["llama.attention.head_count_kv", { t: V.U32, v: spec.kvHeads }],
    ["llama.attention.layer_norm_rms_epsilon", { t: V.F32, v: 1e-5 }],
    ["llama.vocab_size", { t: V.U32, v: spec.vocabSize }],
    ["tokenizer.ggml.model", { t: V.STRING, v: "llama" }],
    ["tokenizer.ggml.tokens", { t: V.ARRAY, of: V.STRING, v: vocab.tokens }],
    ["tokenizer.ggml.scores", { t: V.ARRAY, of: V.F32, v: vocab.scores }],
    ["tokenizer.ggml.token_type", { t: V.ARRAY, of: V.I32, v: vocab.types }],
    ["tokenizer.ggml.unknown_token_id", { t: V.U32, v: 0 }],
    ["tokenizer.ggml.bos_token_id", { t: V.U32, v: 1 }],
    ["tokenizer.ggml.eos_token_id", { t: V.U32, v: 2 }],
    ["tokenizer.ggml.add_bos_token", { t: V.BOOL, v: true }],
    ["tokenizer.ggml.add_eos_token", { t: V.BOOL, v: false }],
    ...(spec.chatTemplate !== undefined ? [["tokenizer.chat_template", { t: V.STRING, v: spec.chatTemplate }] as [string, MetaValue]] : []),
  ];
}

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v >>> 0, this.length); this.length += 4; }
  i32(v: number): void { this.ensure(4); this.buf.writeInt32LE(v | 0, this.length); this.length += 4; }
  u64(v: number): void { this.ensure(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  f32(v: number): void { this.ensure(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  u8(v: number): void { this.ensure(1); this.buf[this.length++] = v; }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.ensure(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  pad(alignment: number): void {
    while (this.length % alignment !== 0) this.u8(0);
  }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

function writeValue(w: ByteWriter, m: MetaValue): void {
  w.u32(m.t);
  switch (m.t) {
    case V.U32: w.u32(m.v); break;
    case V.I32: w.i32(m.v); break;
    case V.F32: w.f32(m.v); break;
    case V.BOOL: w.u8(m.v ? 1 : 0); break;
    case V.STRING: w.str(m.v); break;
    case V.ARRAY:
      w.u32(m.of);
      w.u64(m.v.length);
      if (m.of === V.STRING) for (const s of m.v as string[]) w.str(s);
      else if (m.of === V.F32) for (const x of m.v as number[]) w.f32(x);
      else for (const x of m.v as number[]) w.i32(x);
      break;
  }
}

function tensorBytes(t: TensorSpec): number {
  return t.dims.reduce((a, b) => a * b, 1) * (t.type === GGML_F16 ? 2 : 4);
}

function fillTensor(t: TensorSpec, rng: Rng, scale: number, out: Buffer, elements: number): void {
  for (let i = 0; i < elements; i++) {
    const x = t.init === "ones" ? 1 : (rng.next() * 2 - 1) * scale;
    if (t.type === GGML_F16) out.writeUInt16LE(float32ToFloat16(x), i * 2);
    else out.writeFloatLE(x, i * 4);
  }
}

/** Writes the model to `path` atomically (a temporary file renamed into place). */
export async function writeLlamaGguf(path: string, spec: LlamaSpec): Promise<void> {
  const tensors = tensorsOf(spec);
  const meta = metadataOf(spec);
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const [k, v] of meta) {
    w.str(k);
    writeValue(w, v);
  }
  let offset = 0;
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offset);
    offset += Math.ceil(tensorBytes(t) / ALIGNMENT) * ALIGNMENT;
  }
  w.pad(ALIGNMENT);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, "w");
  try {
    await fh.write(w.bytes());
    const rng = createRng(spec.seed);
    // Uniform in ±scale has the standard deviation 0.02 of the usual llama initialisation.
    const scale = 0.02 * Math.sqrt(3);
    const CHUNK = 1 << 20; // elements per write
    for (const t of tensors) {
      const total = t.dims.reduce((a, b) => a * b, 1);
      const elemSize = t.type === GGML_F16 ? 2 : 4;
      for (let done = 0; done < total; done += CHUNK) {
        const n = Math.min(CHUNK, total - done);
        const buf = Buffer.alloc(n * elemSize);
        fillTensor(t, rng, scale, buf, n);
        await fh.write(buf);
      }
      const padding = (ALIGNMENT - (tensorBytes(t) % ALIGNMENT)) % ALIGNMENT;
      if (padding > 0) await fh.write(Buffer.alloc(padding));
    }
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/**
 * Which of llama.cpp's x86 CPU backend builds (libggml-cpu-<variant>.so, shipped by node-llama-cpp)
 * the native engine loads. ggml ranks the builds by instruction set and loads the widest, but its
 * F32 and F16 dot products only vectorise whole steps of 64 elements with AVX-512 (32 with AVX2)
 * and add the remainder one element at a time. A model whose rows are not multiples of 64 (embedding
 * 288, FFN 172, attention heads of 48 or 8 elements…) then spends much of each row in scalar code
 * on AVX-512, where the AVX2 build covers more of it with vectors: measured on stories260K and a
 * 288-wide model, the AVX2 build decodes 18–25% cheaper; on a model of 768/2048/64 both are equal.
 *
 * So for F32/F16 weights with such a row length, the AVX2 builds come first (the one with VNNI,
 * then plain AVX2); quantized weights, whose kernels work in blocks, keep ggml's choice. A build the
 * CPU cannot run is skipped by the loader.
 */
export type WeightType = "f32" | "f16" | "quantized";

/** GGML tensor type ids of the GGUF format. */
const GGML_F32 = 0;
const GGML_F16 = 1;

export const AVX512_STEP = 64;
export const AVX2_PREFERENCE = ["libggml-cpu-alderlake.so", "libggml-cpu-haswell.so"] as const;

export interface ModelShape {
  weightType: WeightType;
  /** Lengths of the rows the model's dot products run over: embedding, FFN, head sizes. */
  rowLengths: readonly number[];
}

export function preferredCpuVariants(shape: ModelShape, arch: string = process.arch): readonly string[] {
  if (arch !== "x64" || shape.weightType === "quantized") return [];
  return shape.rowLengths.some((n) => n % AVX512_STEP !== 0) ? AVX2_PREFERENCE : [];
}

/** The weight type holding most of the model's parameters. */
export function dominantWeightType(tensors: readonly { ggmlType: number; dimensions: readonly (number | bigint)[] }[]): WeightType {
  const elements = new Map<number, number>();
  for (const t of tensors) {
    const n = t.dimensions.reduce<number>((a, d) => a * Number(d), 1);
    elements.set(t.ggmlType, (elements.get(t.ggmlType) ?? 0) + n);
  }
  let best = GGML_F32;
  let most = -1;
  for (const [type, n] of elements) {
    if (n > most) {
      best = type;
      most = n;
    }
  }
  return best === GGML_F32 ? "f32" : best === GGML_F16 ? "f16" : "quantized";
}

/** Row lengths from flat GGUF metadata (`llama.embedding_length`, …); missing keys are left out. */
export function rowLengthsFromMetadata(meta: Record<string, unknown>): number[] {
  const arch = typeof meta["general.architecture"] === "string" ? meta["general.architecture"] : "llama";
  const num = (k: string) => {
    const v = meta[`${arch}.${k}`];
    return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : Array.isArray(v) ? Math.max(...v.map(Number)) : undefined;
  };
  const embd = num("embedding_length");
  const heads = num("attention.head_count");
  const out = [embd, num("feed_forward_length"), num("attention.key_length"), num("attention.value_length")];
  if (embd !== undefined && heads !== undefined && heads > 0) out.push(embd / heads);
  return out.filter((n): n is number => n !== undefined && Number.isFinite(n) && n > 0);
}

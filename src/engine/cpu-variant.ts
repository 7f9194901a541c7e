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

/** llama.cpp's CPU backend built for the install machine (scripts/build-cpu-backend.mjs). */
export interface BuiltCpuBackend {
  /** Absolute path of the shared library. */
  path: string;
  /** /proc/cpuinfo flags of the machine it was built on (-march=native). */
  cpuFlags: readonly string[];
}

export interface CpuBackendChoice {
  /** Backend files to try first, in order (absolute paths, or names in node-llama-cpp's folder). */
  preferred: readonly string[];
  /** "native" (the build for this CPU) or "prebuilt" (node-llama-cpp's variants). */
  kind: "native" | "prebuilt";
  reason: string;
}

/**
 * Which llama.cpp CPU kernels a native engine loads. The build for this very CPU runs the matrix
 * products of models of realistic size faster than node-llama-cpp's prebuilt variants (measured on
 * a 2-vCPU AVX-512 machine: a 15M F32 model at 4–8 streams +17–25%, a 110M F16 model at one
 * stream +30%), and the tiniest models slower (stories260K −20–27%: per-operation overhead, not
 * arithmetic, dominates them), so `auto` takes it from TINY_MODEL_BYTES up. It is used only when
 * this CPU has every instruction-set flag of the CPU it was built on.
 */
export function chooseCpuBackend(i: {
  setting: "auto" | "native" | "prebuilt";
  built: BuiltCpuBackend | undefined;
  runningFlags: readonly string[];
  modelBytes: number;
  tinyModelBytes: number;
  prebuiltPreference: readonly string[];
}): CpuBackendChoice {
  const prebuilt = (reason: string): CpuBackendChoice => ({ preferred: i.prebuiltPreference, kind: "prebuilt", reason });
  if (i.setting === "prebuilt") return prebuilt("CPU_BACKEND=prebuilt");
  if (i.built === undefined) {
    if (i.setting === "native") throw new Error("CPU_BACKEND=native: no CPU backend was built for this machine (see `npm run build:native`)");
    return prebuilt("no CPU backend built for this machine");
  }
  const running = new Set(i.runningFlags);
  const missing = i.built.cpuFlags.filter((f) => !running.has(f));
  if (missing.length > 0) {
    if (i.setting === "native") throw new Error(`CPU_BACKEND=native: this CPU lacks ${missing.slice(0, 8).join(" ")} of the CPU the backend was built on`);
    return prebuilt(`built on another CPU (this one lacks ${missing.slice(0, 8).join(" ")})`);
  }
  if (i.setting === "auto" && i.modelBytes < i.tinyModelBytes) return prebuilt("tiny model: the prebuilt kernels run it faster");
  return { preferred: [i.built.path, ...i.prebuiltPreference], kind: "native", reason: i.setting === "native" ? "CPU_BACKEND=native" : "built for this CPU" };
}

/** The `flags` of /proc/cpuinfo's first CPU (empty where there is none). */
export function cpuFlagsOf(cpuinfo: string): string[] {
  const line = cpuinfo.split("\n").find((l) => l.startsWith("flags"));
  return line === undefined ? [] : [...new Set(line.slice(line.indexOf(":") + 1).trim().split(/\s+/))].sort();
}

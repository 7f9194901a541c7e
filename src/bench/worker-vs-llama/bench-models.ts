import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { writeLlamaGguf, type LlamaSpec } from "../../engine/gguf-writer.js";
import { isFile } from "../../engine/model-source.js";

/**
 * The models engine benchmarks run on (the dimensions of perf-anchor.md): stories260K, a real tiny
 * model shipped in ../shared/models, and two random-weight llama models of realistic sizes written
 * by our own GGUF writer into a cache outside the repository. Random weights run exactly as fast
 * as trained ones of the same shape.
 */
export interface BenchModel {
  name: string;
  /** Present for models we write; absent for a shipped file. */
  spec?: LlamaSpec;
  path: string;
}

const common = { contextLength: 2048, vocabSize: 32000, tiedEmbeddings: true } as const;

/** 15.2 M parameters, F32, 59 MiB. */
export const TINY15M_SPEC: LlamaSpec = {
  ...common, name: "tiny15m (random weights)", dim: 288, layers: 6, heads: 6, kvHeads: 6, ffn: 768, fileType: "f32", seed: 15,
};

/** 109.5 M parameters, F16, 210 MiB. */
export const SMALL110M_SPEC: LlamaSpec = {
  ...common, name: "small110m (random weights)", dim: 768, layers: 12, heads: 12, kvHeads: 12, ffn: 2048, fileType: "f16", seed: 110,
};

/** Bumped whenever the specs or the writer change, so that stale cached files are not reused. */
const BENCH_MODELS_VERSION = 1;

export function defaultBenchCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "inference-engine");
}

export function benchModels(sharedModelsDir: string, cacheDir: string): BenchModel[] {
  const dir = join(cacheDir, "bench-models");
  return [
    { name: "stories260K", path: resolve(sharedModelsDir, "stories260K.gguf") },
    { name: "tiny15m", spec: TINY15M_SPEC, path: join(dir, `tiny15m-v${BENCH_MODELS_VERSION}.gguf`) },
    { name: "small110m", spec: SMALL110M_SPEC, path: join(dir, `small110m-v${BENCH_MODELS_VERSION}.gguf`) },
  ];
}

/** Writes the model when we own its spec and it is not cached yet; false when a shipped file is absent. */
export async function ensureBenchModel(m: BenchModel): Promise<boolean> {
  if (await isFile(m.path)) return true;
  if (m.spec === undefined) return false;
  await writeLlamaGguf(m.path, m.spec);
  return true;
}

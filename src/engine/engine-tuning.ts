import { AUTO_PARALLEL, type EngineKind, type GpuMode } from "../common/config.js";

/**
 * Thread and parallelism defaults. On CPU, llama.cpp's threads must never exceed the cores (all
 * processes of the machine together): oversubscribed, generation collapses to a few tokens/s. Tiny
 * models run fastest on one thread, where thread synchronisation costs more than the matrix work.
 */
export interface ThreadChoiceInput {
  requested: number | "auto";
  cores: number;
  /** Worker processes sharing this machine's cores. */
  localWorkers: number;
  modelBytes: number;
  force: boolean;
}

/** Below this model size (bytes) one thread beats several (measured: stories260K, 1.2 MB). */
export const TINY_MODEL_BYTES = 8 * 1024 * 1024;
export const DEFAULT_PARALLEL = AUTO_PARALLEL;

export function chooseThreads(i: ThreadChoiceInput): number {
  const share = Math.max(1, Math.floor(i.cores / Math.max(1, i.localWorkers)));
  if (i.requested === "auto") return i.modelBytes < TINY_MODEL_BYTES ? 1 : share;
  if (!i.force && i.requested * i.localWorkers > i.cores) {
    throw new Error(
      `THREADS=${i.requested} × ${i.localWorkers} local worker(s) exceeds the ${i.cores} cores of this machine; ` +
        `oversubscribed llama.cpp threads collapse throughput. Lower THREADS or pass --force-threads.`,
    );
  }
  return i.requested;
}

export function chooseParallel(requested: number | "auto"): number {
  return requested === "auto" ? DEFAULT_PARALLEL : requested;
}

export type EngineChoice = { engine: "native" | "llama"; reason: string };

/**
 * Which engine a worker runs. The native decode loop is the fast path on CPU; GPU serving (CUDA,
 * Vulkan) stays with node-llama-cpp, which ships those backends. `auto` falls back to node-llama-cpp
 * when the native addon is not built; asking for `native` explicitly fails instead.
 */
export function chooseEngine(i: { requested: EngineKind; gpu: GpuMode; nativeUnavailable: string | undefined }): EngineChoice {
  if (i.requested === "native") {
    if (i.gpu !== "off") throw new Error(`ENGINE=native runs on CPU only; GPU=${i.gpu} needs ENGINE=llama (or auto)`);
    if (i.nativeUnavailable !== undefined) throw new Error(`ENGINE=native: ${i.nativeUnavailable}`);
    return { engine: "native", reason: "requested" };
  }
  if (i.requested !== "auto") return { engine: "llama", reason: "requested" };
  if (i.gpu !== "off") return { engine: "llama", reason: `GPU=${i.gpu} is served by node-llama-cpp` };
  if (i.nativeUnavailable !== undefined) return { engine: "llama", reason: i.nativeUnavailable };
  return { engine: "native", reason: "CPU" };
}

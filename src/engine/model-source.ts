import { readdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Logger } from "../common/logger.js";
import { writeLlamaGguf, type LlamaSpec } from "./gguf-writer.js";
import { pullModel } from "./model-pull.js";
import { isRemoteSource } from "./model-uri.js";

/**
 * Where a worker's model comes from: an explicit path, or a remote source (`hf:…`, a URL) pulled
 * into the models folder first; else the first `.gguf` in `./models`; else
 * the built-in demo model, written on first use by our own GGUF writer (random weights: it runs
 * like a real model and its text is meaningless).
 */
export interface ResolvedModel {
  path: string;
  demo: boolean;
}

const DEMO_WORDS = (
  "the a and to of in was he she it his her they said one day little big cat dog bird tree sun sky " +
  "went saw had with for on at play happy sad friend mom dad house park ball red blue green time " +
  "there once upon girl boy named lily tom ben sue wanted help look run jump fly eat water fish " +
  "toy car box book small good new old home find found love liked very so but then when all what " +
  "you we I is are be not have do can will up down out over under near far fast slow hot cold"
).split(" ");

export const DEMO_SPEC: LlamaSpec = {
  name: "inference-engine-demo (random weights)",
  dim: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  ffn: 172,
  contextLength: 2048,
  vocabSize: 640,
  words: DEMO_WORDS,
  fileType: "f32",
  // Untied: with tiny random weights a tied model mostly predicts its input token again.
  tiedEmbeddings: false,
  seed: 20261127,
};

/** Bumped whenever DEMO_SPEC or the writer changes, so an old cached file is not reused. */
const DEMO_VERSION = 1;

export function demoModelPath(modelsDir: string): string {
  return join(modelsDir, ".demo", `demo-llama-v${DEMO_VERSION}.gguf`);
}

export async function ensureDemoModel(modelsDir: string): Promise<string> {
  const path = demoModelPath(modelsDir);
  if (!(await isFile(path))) await writeLlamaGguf(path, DEMO_SPEC);
  return path;
}

/** How remote sources are fetched (see model-pull.ts). */
export interface RemoteOptions {
  hfEndpoint: string;
  hfToken: string | undefined;
  log: Logger;
}

export async function resolveModel(modelPath: string | undefined, modelsDir: string, remote?: RemoteOptions): Promise<ResolvedModel> {
  if (modelPath !== undefined && isRemoteSource(modelPath)) {
    if (remote === undefined) throw new Error(`remote model source '${modelPath}' needs a pull configuration`);
    return { path: await pullLogged(modelPath, modelsDir, remote), demo: false };
  }
  if (modelPath !== undefined) {
    const path = resolve(modelPath);
    if (!(await isFile(path))) throw new Error(`model file not found: ${path}`);
    return { path, demo: false };
  }
  const found = await firstGguf(modelsDir);
  if (found !== undefined) return { path: found, demo: false };
  return { path: await ensureDemoModel(modelsDir), demo: true };
}

export function isDemoModelPath(path: string): boolean {
  return /[\\/]\.demo[\\/]demo-llama-v\d+\.gguf$/.test(path);
}

/** `models/TinyLlama-1.1B-Chat.Q4_K_M.gguf` → `TinyLlama-1.1B-Chat.Q4_K_M`. */
export function modelIdFromPath(path: string): string {
  if (isDemoModelPath(path)) return "demo";
  return basename(path).replace(/\.gguf$/i, "");
}

async function firstGguf(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const name of names.filter((n) => n.toLowerCase().endsWith(".gguf")).sort()) {
    const path = resolve(dir, name);
    if (await isFile(path)) return path;
  }
  return undefined;
}

/** Whether `path` is a regular file (false when absent or unreadable). */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Pulls with progress as JSON log lines (every 10%), for processes without a terminal bar. */
async function pullLogged(source: string, modelsDir: string, remote: RemoteOptions): Promise<string> {
  let nextPct = 0;
  remote.log.info({ source, models_dir: modelsDir }, "model.pull.start");
  let result;
  try {
    result = await pullModel(source, {
      modelsDir, hfEndpoint: remote.hfEndpoint, hfToken: remote.hfToken,
      onProgress: (p) => {
        if (p.total === undefined || p.total === 0) return;
        const pct = Math.floor((p.bytes / p.total) * 100);
        if (pct >= nextPct) {
          nextPct = pct - (pct % 10) + 10;
          remote.log.info({ source, bytes: p.bytes, total: p.total, percent: pct }, "model.pull.progress");
        }
      },
    });
  } catch (err) {
    throw new Error(`could not pull ${source}: ${(err as Error).message}`, { cause: err });
  }
  if (result.alreadyPresent) remote.log.info({ source, path: result.path }, "model.pull.present");
  else remote.log.info({ source, path: result.path, bytes: result.bytes, sha256: result.sha256, verified: result.verifiedAgainst ?? "none" }, "model.pull.done");
  return result.path;
}

import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { writeLlamaGguf } from "../../engine/gguf-writer.js";
import { Target } from "../targets.js";
import { startChild } from "../../common/process-harness.js";
import { startQuiet } from "./fleet.js";
import { table, verdict } from "./markdown.js";
import { median } from "./measure.js";
import type { SectionResult, SuiteMode } from "./suite-types.js";

/**
 * 3. Worker efficiency: one llama.cpp worker (HTTP prefill + decode, greedy) against node-llama-cpp
 * driven directly by scripts/bench/direct-llama.mjs with the same model, threads, context and
 * parallelism, at 1 and 4 concurrent streams of up to 128 tokens, alternating. Both sides
 * generate greedily from the same prompts, so both produce the same tokens. tokens/s = generated
 * tokens / wall time from the first start to the last end. Target: worker ≥ 0.95× direct.
 */
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const DIRECT = join(ROOT, "scripts/bench/direct-llama.mjs");
const PROMPTS = ["Once upon a time, there was a little girl named Lily.", "One day, a big dog saw a red ball in the park.", "Tom and Sue went to the sea.", "The sun was hot and the sky was blue."];

/** Random weights at realistic dimensions (as ../shared/perf-anchor.md's tiny15m), written by our own writer. */
async function tiny15m(): Promise<string> {
  const path = join(ROOT, "models/.bench/tiny15m.gguf");
  if (!existsSync(path)) {
    await mkdir(join(ROOT, "models/.bench"), { recursive: true });
    await writeLlamaGguf(path, {
      name: "tiny15m (random weights)", dim: 288, layers: 6, heads: 6, kvHeads: 6, ffn: 768, contextLength: 2048,
      vocabSize: 32000, fileType: "f32", tiedEmbeddings: true, seed: 15,
    });
  }
  return path;
}

async function runDirect(model: string, threads: number, contextSize: number, prompts: string[], maxTokens: number): Promise<{ tokens: number; wallMs: number }> {
  const c = startChild({
    name: "direct-llama", command: process.execPath, args: [DIRECT, JSON.stringify({ model, threads, contextSize, prompts, maxTokens })],
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", UV_THREADPOOL_SIZE: "1" },
  });
  // Bounded like every load of the suite: an oversubscribed machine can slow llama.cpp to a crawl.
  const timer = setTimeout(() => c.kill("SIGKILL"), 300_000);
  // Its answer is its last stdout line: wait for stdout's end as well as the exit.
  const [{ code }] = await Promise.all([c.exited, once(c.child.stdout!, "close")]);
  clearTimeout(timer);
  const last = c.logs.at(-1) as { tokens?: unknown; wallMs?: unknown } | undefined;
  if (code === 0 && typeof last?.tokens === "number" && typeof last.wallMs === "number") return { tokens: last.tokens, wallMs: last.wallMs };
  throw new Error(`direct-llama exited ${code}: ${c.stderrTail()}`);
}

async function runWorker(url: string, prompts: string[], maxTokens: number): Promise<{ tokens: number; wallMs: number }> {
  const target = new Target({ kind: "worker", urls: [url], model: "any", timeoutMs: 120_000 });
  try {
    const t0 = performance.now();
    const results = await Promise.all(prompts.map((prompt, index) => target.send({ index, prompt, messages: [], maxTokens }, 0, new AbortController().signal)));
    const wallMs = performance.now() - t0;
    const bad = results.find((r) => r.outcome !== "completed");
    if (bad) throw new Error(`worker request failed: ${bad.status} ${bad.reason}`);
    return { tokens: results.reduce((a, r) => a + r.completionTokens, 0), wallMs };
  } finally {
    await target.close();
  }
}

export async function workerEfficiency(mode: SuiteMode, storiesPath: string): Promise<SectionResult> {
  const models: { name: string; path: string; threads: number }[] = [];
  if (existsSync(storiesPath)) models.push({ name: "stories260K", path: storiesPath, threads: 1 });
  // One thread: two llama.cpp threads collapse whenever a neighbour takes a core (seen here at
  // load average 7: 10–25 tokens/s on either side), which says nothing about the worker.
  if (!mode.quick) models.push({ name: "tiny15m (random weights)", path: await tiny15m(), threads: 1 });
  const reps = mode.quick ? 1 : 5;
  const maxTokens = mode.quick ? 32 : 128;
  const contextSize = 1024;
  const rows: (string | number)[][] = [];
  const data: unknown[] = [];
  for (const m of models) {
    const worker = await startQuiet(
      ["worker", "--model", m.path, "--threads", String(m.threads), "--parallel", "4", "--context-size", String(contextSize)],
      "/worker/health",
      { COORDINATOR_URL: "http://127.0.0.1:9", HEARTBEAT_INTERVAL_MS: "3600000", UV_THREADPOOL_SIZE: "1" },
    );
    try {
      for (const streams of [1, 4]) {
        const prompts = PROMPTS.slice(0, streams);
        mode.log(`worker efficiency: ${m.name}, ${streams} stream(s)`);
        await runWorker(worker.url, prompts, 8); // warm-up
        const w: number[] = [];
        const d: number[] = [];
        for (let i = 0; i < reps; i++) {
          const a = await runWorker(worker.url, prompts, maxTokens);
          const b = await runDirect(m.path, m.threads, contextSize, prompts, maxTokens);
          w.push((a.tokens * 1000) / a.wallMs);
          d.push((b.tokens * 1000) / b.wallMs);
        }
        // Best of N on each side: on a shared machine a repetition can only be slowed by others.
        const ratio = Math.max(...w) / Math.max(...d);
        // A side whose best run is 3× its median was disturbed too much to judge.
        const disturbed = Math.max(...w) > 3 * median(w) || Math.max(...d) > 3 * median(d);
        rows.push([
          m.name, String(streams), String(m.threads), Math.max(...w), Math.max(...d), median(w), median(d), `${ratio.toFixed(2)}×`,
          disturbed ? "⚠️ not judged: best > 3× median (machine contention)" : verdict(ratio >= 0.95, "(< 0.95×)"),
        ]);
        data.push({ model: m.name, streams, threads: m.threads, worker: w, direct: d });
      }
    } finally {
      await worker.stop();
    }
  }
  const md = models.length === 0
    ? "Skipped: ../shared/models/stories260K.gguf is absent (and quick mode writes no generated model)."
    : [
        `Greedy, up to ${maxTokens} new tokens per stream, context ${contextSize} per sequence, parallel 4, UV_THREADPOOL_SIZE=1 on both sides; ` +
          `${reps} alternating repetition(s); the ratio compares the best of each side (llama.cpp threads stall whenever another ` +
          `process takes a core, which this shared machine's neighbours do: medians are shown beside). The direct script starts a fresh process per repetition (model load not timed).`,
        "",
        table(["model", "streams", "threads", "worker tok/s (best)", "direct tok/s (best)", "worker (median)", "direct (median)", "ratio (best)", "target ≥ 0.95×"], rows),
        "",
        "The worker runs its default engine: on CPU, the native decode loop (one llama_decode per step for every",
        "sequence, each step's tokens handed to JavaScript at once; for models over 8 MiB, llama.cpp's kernels built",
        "for this CPU), where the direct script evaluates each",
        "sequence through node-llama-cpp's own per-token path (work handed through libuv, one call per sequence",
        "and token). With `ENGINE=llama` the worker runs that same path plus its HTTP, session table and SSE",
        "writes per token; section 7 compares the worker with llama.cpp's own server.",
      ].join("\n");
  return { title: "3. Worker efficiency against node-llama-cpp driven directly", markdown: md, data };
}

import { cpus, availableParallelism } from "node:os";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { benchModels, defaultBenchCacheDir, ensureBenchModel } from "./bench-models.js";
import { startLlamaServer, startWorker, type Server } from "./bench-processes.js";
import { ANCHOR, renderTable, writeSection, type Cell } from "./engine-report.js";
import { bundledLlamaSource, buildLlamaServer, llamaServerBinary, type LlamaSource } from "./llama-server-build.js";
import { runLoad, type LoadOptions, type LoadResult, type Target } from "./stream-load.js";

/**
 * Engine benchmark: our worker (through its HTTP API, prefill + decode over SSE) against
 * llama-server built from the same llama.cpp source, side by side with alternating repetitions,
 * on stories260K and two random-weight models (tiny15m, small110m). Without llama-server it
 * compares against perf-anchor.md's numbers and says so.
 *
 *   node dist/src/bench/engine/worker-vs-llama-server.js [--with-llama-server] [--build-llama-server]
 *     [--models stories260K,tiny15m,small110m] [--streams 1,4,8] [--reps 5] [--max-tokens 128]
 *     [--server-threads match|N] [--worker-env K=V,…] [--out docs/PERFORMANCE.md | --no-write] [--json PATH]
 *
 * llama-server runs with as many threads as the worker chose for itself (`match`, the default): the
 * comparison is of the serving path, not of thread counts (llama-server with 2 threads on a model
 * as small as stories260K collapses whenever the machine has other load).
 *
 * --with-llama-server uses the cached llama-server and builds it first when absent (about 15 minutes
 * on 2 cores; never in CI). Exit code 0 whatever the numbers: this reports, it does not judge.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const CLI = join(ROOT, "bin", "inference-engine.js");
const SHARED_MODELS = resolve(ROOT, "../shared/models");

/** Short story prompts, 18–32 tokens each for stories260K's vocabulary. */
const PROMPTS = [
  "Once upon a time, there was a little girl named Lily who loved to play in the park.",
  "Tom had a big red ball. One day he went to the garden to play with his friend.",
  "The sun was shining and the birds were singing. A small cat sat under a tree.",
  "Sue wanted to help her mom bake a cake for her dad, so she got the flour.",
];
/** stories260K ends a story with BOS: banned along with EOS so every stream runs to max tokens. */
const BANNED = [1, 2];

interface Args {
  withServer: boolean;
  models: string[];
  streams: number[];
  reps: number;
  maxTokens: number;
  /** "match": the worker's own choice. */
  serverThreads: number | "match";
  workerEnv: Record<string, string>;
  out: string | undefined;
  json: string | undefined;
  cacheDir: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    withServer: false, models: ["stories260K", "tiny15m", "small110m"], streams: [1, 4, 8], reps: 5, maxTokens: 128,
    serverThreads: "match", workerEnv: {}, out: join(ROOT, "docs", "PERFORMANCE.md"), json: undefined,
    cacheDir: defaultBenchCacheDir(),
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const ints = (v: string) => v.split(",").map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: '${x}' is not a positive integer`);
      return n;
    });
    if (flag === "--with-llama-server" || flag === "--build-llama-server") a.withServer = true;
    else if (flag === "--models") a.models = value().split(",");
    else if (flag === "--streams") a.streams = ints(value());
    else if (flag === "--reps") a.reps = ints(value())[0]!;
    else if (flag === "--max-tokens") a.maxTokens = ints(value())[0]!;
    else if (flag === "--server-threads") {
      const v = value();
      a.serverThreads = v === "match" ? "match" : ints(v)[0]!;
    }
    else if (flag === "--worker-env") {
      for (const kv of value().split(",")) {
        const eq = kv.indexOf("=");
        if (eq < 1) throw new Error(`--worker-env: '${kv}' is not KEY=VALUE`);
        a.workerEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
    } else if (flag === "--out") a.out = resolve(value());
    else if (flag === "--no-write") a.out = undefined;
    else if (flag === "--json") a.json = resolve(value());
    else if (flag === "--cache-dir") a.cacheDir = resolve(value());
    else throw new Error(`unknown flag ${flag}`);
  }
  return a;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let server: { binary: string; source: LlamaSource } | undefined;
  if (args.withServer) {
    const source = bundledLlamaSource(ROOT);
    const cached = llamaServerBinary(args.cacheDir, source);
    if (cached === undefined) say(`building llama-server ${source.release} (${source.commit.slice(0, 8)}) into ${args.cacheDir}; about 15 minutes on 2 cores`);
    const binary = cached ?? (await buildLlamaServer(args.cacheDir, source, (l) => say(`  ${l}`)));
    server = { binary, source };
  }
  const maxStreams = Math.max(...args.streams);
  const cells: Cell[] = [];
  const all = benchModels(SHARED_MODELS, args.cacheDir);
  let workerInfo: Record<string, unknown> = {};
  const serverThreadsUsed: Record<string, number> = {};
  const workerThreads: Record<string, number> = {};
  for (const name of args.models) {
    const model = all.find((m) => m.name === name);
    if (model === undefined) throw new Error(`unknown model ${name}; known: ${all.map((m) => m.name).join(", ")}`);
    if (!(await ensureBenchModel(model))) {
      say(`${name}: ${model.path} is absent; skipped`);
      continue;
    }
    say(`${name}: starting the worker${server ? " and llama-server" : ""}`);
    const worker = await startWorker({ cli: CLI, model: model.path, parallel: maxStreams, env: args.workerEnv, startTimeoutMs: 60_000 });
    workerInfo = worker.listening;
    workerThreads[name] = Number(worker.listening.threads);
    let llama: Server | undefined;
    try {
      if (server !== undefined) {
        const threads = args.serverThreads === "match" ? Number(worker.listening.threads) : args.serverThreads;
        serverThreadsUsed[name] = threads;
        llama = await startLlamaServer({
          binary: server.binary, model: model.path, threads, parallel: maxStreams, ctxPerSeq: 1024, startTimeoutMs: 60_000,
        });
      }
      for (const streams of args.streams) {
        const cell: Cell = { model: name, streams, workerTps: [], workerTtftMs: [] };
        if (llama !== undefined) Object.assign(cell, { serverTps: [], serverTtftMs: [] });
        else if (ANCHOR[name]?.[streams] !== undefined) cell.anchor = ANCHOR[name]![streams]!;
        const load = (url: string): LoadOptions => ({
          url, prompts: PROMPTS, streams, maxTokens: args.maxTokens, bannedTokens: BANNED, timeoutMs: 300_000,
        });
        const record = (target: Target, r: LoadResult) => {
          const ttft = [...r.ttftMs].sort((x, y) => x - y)[r.ttftMs.length >> 1]!;
          if (target === "worker") {
            cell.workerTps.push(r.tokensPerSec);
            cell.workerTtftMs.push(ttft);
          } else {
            cell.serverTps!.push(r.tokensPerSec);
            cell.serverTtftMs!.push(ttft);
          }
          say(`  ${name} ×${streams} ${target}: ${r.tokensPerSec.toFixed(1)} tok/s, TTFT ${ttft.toFixed(1)} ms (${r.tokens} tokens)`);
        };
        // One unmeasured warm-up each, then alternate which side goes first.
        await runLoad("worker", load(worker.url));
        if (llama !== undefined) await runLoad("llama-server", load(llama.url));
        for (let rep = 0; rep < args.reps; rep++) {
          const order: Target[] = llama === undefined ? ["worker"] : rep % 2 === 0 ? ["worker", "llama-server"] : ["llama-server", "worker"];
          for (const target of order) record(target, await runLoad(target, load(target === "worker" ? worker.url : llama!.url)));
        }
        cells.push(cell);
      }
    } finally {
      await worker.stop();
      await llama?.stop();
    }
  }

  const table = renderTable(cells);
  process.stdout.write(`${table}\n`);
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const engine = `engine ${String(workerInfo.engine)}, threads of its own choice (${Object.entries(workerThreads).map(([m, t]) => `${m}: ${t}`).join(", ")})`;
  const reference = server !== undefined
    ? `llama-server built from node-llama-cpp's bundled llama.cpp ${server.source.release} (${server.source.commit.slice(0, 8)}), ` +
      `\`-t T -tb T -np ${maxStreams} -c ${1024 * maxStreams} -cb\` with T the worker's thread count` +
      `${args.serverThreads === "match" ? "" : ` (here ${args.serverThreads})`}, measured side by side ` +
      `with alternating repetitions (medians of ${args.reps})`
    : "**llama-server was not run**: the reference columns are perf-anchor.md's numbers (another day, the same machine class), " +
      "so the ratios are indicative only; run with `--with-llama-server` for a side-by-side measurement";
  const body = [
    "## Worker vs llama-server: generation speed",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} on ${availableParallelism()} × ${cpu}, Node ${process.version}. ` +
      `Worker: our HTTP API (POST /worker/prefill, then /worker/decode over SSE), ${engine}, defaults otherwise. ` +
      `Reference: ${reference}.`,
    "",
    `Method: ${args.maxTokens} new tokens per stream, greedy, end of text banned (BOS and EOS), ${PROMPTS.length} short story prompts, ` +
      "no prompt-cache reuse, N concurrent streams, one client process for both sides. tokens/s = all generated tokens / " +
      "wall time from the first request's start to the last one's end; TTFT = from a stream's first request to its first " +
      "token (median stream). Speeds and TTFTs are medians over the repetitions; each ratio is the median of the " +
      "per-repetition ratios (the two sides of a repetition run back to back, under much the same load from the rest of " +
      "the machine). Goal: tok/s ratio ≥ 0.9× at 1 and 4 streams, ≥ 1.0× at 8+, TTFT ratio ≤ 1.2×.",
    "",
    table,
    "",
    "Regenerate: `npm run bench:engine` (add `-- --with-llama-server` to build and run llama-server; see src/bench/engine/worker-vs-llama-server.ts).",
  ].join("\n");
  if (args.out !== undefined) {
    await writeSection(args.out, body);
    say(`wrote ${args.out}`);
  }
  const jsonPath = args.json ?? join(args.cacheDir, "results", `worker-vs-llama-server-${Date.now()}.json`);
  await mkdir(dirname(jsonPath), { recursive: true });
  await writeFile(jsonPath, JSON.stringify({ args, worker: workerInfo, llamaServer: server ?? null, serverThreads: serverThreadsUsed, cells }, null, 2));
  say(`wrote ${jsonPath}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    say(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);

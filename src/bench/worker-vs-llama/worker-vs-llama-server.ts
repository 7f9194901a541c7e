import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { engineBenchDefaults, workerVsLlamaServer, type EngineBenchOptions } from "./engine-section.js";

/**
 * The engine benchmark on its own, for experiments beyond the performance suite's section 7
 * (other models, stream counts, repetitions, worker environments). Prints the section's Markdown;
 * never writes docs/PERFORMANCE.md (`npm run bench:engine` does, through the suite).
 *
 *   node dist/src/bench/worker-vs-llama/worker-vs-llama-server.js [--with-llama-server]
 *     [--models stories260K,tiny15m,small110m] [--streams 1,4,8] [--reps 5] [--max-tokens 128]
 *     [--server-threads match|N] [--worker-env K=V,…] [--cache-dir DIR] [--json PATH]
 *
 * Exit code 0 whatever the numbers: this reports, it does not judge.
 */
const USAGE = `usage: worker-vs-llama-server [--with-llama-server] [--models a,b] [--streams 1,4,8] [--reps N]
  [--max-tokens N] [--server-threads match|N] [--worker-env K=V,...] [--cache-dir DIR] [--json PATH]`;

function readArgs(argv: string[]): { opts: EngineBenchOptions; json: string | undefined } {
  const { values: v } = parseArgs({
    args: argv, strict: true,
    options: {
      help: { type: "boolean", short: "h" }, "with-llama-server": { type: "boolean" }, "build-llama-server": { type: "boolean" },
      models: { type: "string" }, streams: { type: "string" }, reps: { type: "string" }, "max-tokens": { type: "string" },
      "server-threads": { type: "string" }, "worker-env": { type: "string" }, json: { type: "string" }, "cache-dir": { type: "string" },
    },
  });
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const ints = (flag: string, s: string) => s.split(",").map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag}: '${x}' is not a positive integer`);
    return n;
  });
  const o = engineBenchDefaults(false);
  if (v["with-llama-server"] || v["build-llama-server"]) o.withServer = true;
  if (v.models !== undefined) o.models = v.models.split(",");
  if (v.streams !== undefined) o.streams = ints("streams", v.streams);
  if (v.reps !== undefined) o.reps = ints("reps", v.reps)[0]!;
  if (v["max-tokens"] !== undefined) o.maxTokens = ints("max-tokens", v["max-tokens"])[0]!;
  const threads = v["server-threads"];
  if (threads !== undefined) o.serverThreads = threads === "match" ? "match" : ints("server-threads", threads)[0]!;
  for (const kv of v["worker-env"]?.split(",") ?? []) {
    const eq = kv.indexOf("=");
    if (eq < 1) throw new Error(`--worker-env: '${kv}' is not KEY=VALUE`);
    o.workerEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  if (v["cache-dir"] !== undefined) o.cacheDir = resolve(v["cache-dir"]);
  return { opts: o, json: v.json === undefined ? undefined : resolve(v.json) };
}

async function main(): Promise<void> {
  const { opts, json } = readArgs(process.argv.slice(2));
  const r = await workerVsLlamaServer({ quick: false, log: (l) => process.stderr.write(`${l}\n`) }, opts);
  process.stdout.write(`## ${r.title}\n\n${r.markdown}\n`);
  const jsonPath = json ?? join(opts.cacheDir, "results", `worker-vs-llama-server-${Date.now()}.json`);
  await mkdir(dirname(jsonPath), { recursive: true });
  await writeFile(jsonPath, JSON.stringify(r.data, null, 2));
  process.stderr.write(`wrote ${jsonPath}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);

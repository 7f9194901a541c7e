import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
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

function parseArgs(argv: string[]): { opts: EngineBenchOptions; json: string | undefined } {
  const o = engineBenchDefaults(false);
  let json: string | undefined;
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
    if (flag === "--help" || flag === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (flag === "--with-llama-server" || flag === "--build-llama-server") o.withServer = true;
    else if (flag === "--models") o.models = value().split(",");
    else if (flag === "--streams") o.streams = ints(value());
    else if (flag === "--reps") o.reps = ints(value())[0]!;
    else if (flag === "--max-tokens") o.maxTokens = ints(value())[0]!;
    else if (flag === "--server-threads") {
      const v = value();
      o.serverThreads = v === "match" ? "match" : ints(v)[0]!;
    } else if (flag === "--worker-env") {
      for (const kv of value().split(",")) {
        const eq = kv.indexOf("=");
        if (eq < 1) throw new Error(`--worker-env: '${kv}' is not KEY=VALUE`);
        o.workerEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
    } else if (flag === "--json") json = resolve(value());
    else if (flag === "--cache-dir") o.cacheDir = resolve(value());
    else throw new Error(`unknown flag ${flag}\n${USAGE}`);
  }
  return { opts: o, json };
}

async function main(): Promise<void> {
  const { opts, json } = parseArgs(process.argv.slice(2));
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

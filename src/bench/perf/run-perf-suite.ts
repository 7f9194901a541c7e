import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { engineBenchDefaults, workerVsLlamaServer } from "../worker-vs-llama/engine-section.js";
import { kvTiers } from "./kv-tiers.js";
import { coordinatorOverhead } from "./coordinator-overhead.js";
import { coordinatorScale } from "./coordinator-scale.js";
import { ensureNginx, nginxBinary, nginxVersion } from "./nginx-relay.js";
import { overload } from "./overload.js";
import { relayCapacity } from "./relay-capacity.js";
import { routingProfiles } from "./routing-profiles.js";
import { scaling } from "./scaling.js";
import type { SectionResult, SuiteMode } from "./suite-types.js";
import { workerEfficiency } from "./worker-efficiency.js";

/**
 * `npm run bench`: the performance suite. Runs every section (or `--only 1,3`), each comparing
 * numbers measured side by side in the same run, and writes docs/PERFORMANCE.md and a JSON twin.
 * `--quick`: seconds-long runs of every section for CI (written to dist/ unless `--out` is given).
 * `--with-llama-server`: section 7 measures llama-server side by side (building it into the cache
 * first when absent, about 15 minutes on 2 cores; never in CI); without it, section 7 compares with
 * perf-anchor.md's numbers.
 * `--cpu-prof <dir>`: section 2 also profiles the coordinator of its paced 500-stream load (a run of
 * its own, unrecorded) into that folder, and its notes list the top functions by self time.
 */
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

async function main(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv, strict: true,
    options: {
      quick: { type: "boolean" }, out: { type: "string" }, only: { type: "string" }, "with-llama-server": { type: "boolean" }, "cpu-prof": { type: "string" },
    },
  });
  const quick = v.quick === true;
  const only = v.only === undefined ? undefined : new Set(v.only.split(",").map(Number));
  const out = v.out ?? join(ROOT, quick ? "dist/PERFORMANCE.quick.md" : "docs/PERFORMANCE.md");
  const mode: SuiteMode = { quick, log: (l) => process.stderr.write(`[bench] ${l}\n`) };
  const wants = (n: number) => only === undefined || only.has(n);
  // nginx (sections 1, 2 and 5 measure it side by side) is installed from Debian for a full run;
  // a quick run uses it only when already there.
  const usesNginx = wants(1) || wants(2) || wants(5);
  const nginx = usesNginx ? (quick ? nginxBinary() : ensureNginx(mode.log)) : undefined;
  const started = new Date();
  const load0 = loadavg()[0]!;
  const sections: SectionResult[] = [];
  const run = async (n: number, f: () => Promise<SectionResult>) => {
    if (!wants(n)) return;
    mode.log(`section ${n}…`);
    const t = performance.now();
    const at = new Date().toISOString();
    const load = loadavg()[0]!.toFixed(2);
    const r = await f();
    mode.log(`section ${n} done in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    r.markdown = `_Measured ${at}, 1-minute load average ${load} at its start._\n\n${r.markdown}`;
    sections.push(r);
    process.stdout.write(`\n## ${r.title}\n\n${r.markdown}\n`);
  };
  await run(1, () => coordinatorOverhead(mode, nginx));
  await run(2, () => relayCapacity(mode, nginx, { cpuProfDir: v["cpu-prof"] }));
  await run(3, () => workerEfficiency(mode, join(ROOT, "../shared/models/stories260K.gguf")));
  await run(4, () => scaling(mode));
  await run(5, () => overload(mode, nginx));
  await run(6, () => routingProfiles(mode));
  await run(7, () => workerVsLlamaServer(mode, { ...engineBenchDefaults(quick), withServer: v["with-llama-server"] === true }));
  await run(8, () => coordinatorScale(mode));
  await run(9, () => kvTiers(mode));

  const machine = [
    `- Written: ${started.toISOString()}${quick ? " (quick mode: seconds-long runs; the numbers mean little)" : ""}`,
    `- CPU: ${cpus()[0]?.model ?? "unknown"}, ${availableParallelism()} cores; memory ${(totalmem() / 1024 ** 3).toFixed(0)} GiB; Linux ${release()}`,
    `- Node ${process.version}; nginx ${nginx ? nginxVersion(nginx) : usesNginx ? "absent" : "not used by this run"}; 1-minute load average at start ${load0.toFixed(2)} (the machine is shared: compare only numbers of the same run)`,
  ].join("\n");
  const doc = [
    "# Performance",
    "",
    "Written by `npm run bench` (src/bench/perf/). Every comparison is measured side by side in the same run, alternating",
    "repetitions; absolute numbers drift with the load of this shared machine, ratios much less. A row that misses its",
    "target is kept and marked ❌, with what limits it in the notes below it.",
    "",
    "## Machine",
    "",
    machine,
    "",
    "## Commands",
    "",
    "```",
    `npm run bench${quick || only ? ` --${quick ? " --quick" : ""}${only ? ` --only ${[...only].join(",")}` : ""}` : ""}` +
      `${only ? "   # the last run; the other sections are kept from earlier runs, each dated" : ""}`,
    "# each load is an `inference-engine bench` run; e.g. the overhead rows are, against a sim worker and its coordinator:",
    "inference-engine worker --engine sim --sim-itl-ms 10 --sim-itl-per-sequence-ms 0 --sim-prefill-base-ms 1 --parallel 16",
    "inference-engine bench --target worker --url <worker> --concurrency 8 --num-requests 160 --input-tokens 32 --output-tokens 64",
    "inference-engine bench --target seed --url <coordinator> --concurrency 8 --num-requests 160 --input-tokens 32 --output-tokens 64",
    "```",
    "",
    ...mergeSections(only !== undefined && existsSync(out) ? readFileSync(out, "utf8") : "", sections),
  ].join("\n");
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, doc);
  const jsonOut = out.replace(/\.md$/, "") + ".json";
  const fresh = sections.map((s) => ({ title: s.title, data: s.data }));
  await writeFile(jsonOut, JSON.stringify({ started, quick, sections: only !== undefined ? mergeJsonSections(jsonOut, fresh) : fresh }, null, 1));
  mode.log(`wrote ${out}`);
}

/**
 * The sections' markdown in order. With `--only`, sections not run now are kept from the existing
 * document (each carries its own measurement time), so one noisy section can be measured again.
 */
function mergeSections(existing: string, fresh: SectionResult[]): string[] {
  const kept = new Map<string, string>();
  for (const block of existing.split(/^(?=## \d+\. )/m).slice(1)) kept.set(block.slice(3, block.indexOf("\n")), block.trimEnd());
  for (const s of fresh) kept.set(s.title, `## ${s.title}\n\n${s.markdown}`);
  return [...kept.entries()].sort(([a], [b]) => parseInt(a) - parseInt(b)).flatMap(([, md]) => [md, ""]);
}

/** With `--only`, the JSON keeps the sections not run now, as the markdown does. */
function mergeJsonSections(path: string, fresh: { title: string; data: unknown }[]): { title: string; data: unknown }[] {
  const kept = new Map<string, { title: string; data: unknown }>();
  if (existsSync(path)) {
    try {
      for (const s of (JSON.parse(readFileSync(path, "utf8")) as { sections?: { title: string; data: unknown }[] }).sections ?? []) kept.set(s.title, s);
    } catch {
      // an unreadable twin is rewritten with what this run has
    }
  }
  for (const s of fresh) kept.set(s.title, s);
  return [...kept.values()].sort((a, b) => parseInt(a.title) - parseInt(b.title));
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  },
);

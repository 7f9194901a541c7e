import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { stopChild } from "../../common/process-harness.js";
import { cpuProfileTable, readCpuProfile, summarizeCpuProfile } from "./cpu-profile-summary.js";
import type { Fleet } from "./fleet.js";
import { measure, type LoadSpec } from "./measure.js";

/**
 * `--cpu-prof <dir>` of the performance suite: one more run of a relay load, unrecorded, against a
 * coordinator of its own started with `node --cpu-prof` (the profiler's sampling would weigh on the
 * measured runs), and the top functions of its profile by self time, in µs per relayed token. The
 * profile spans the coordinator's whole life: its start-up (module loading, compilation) is in it.
 */
export interface RelayProfile {
  file: string;
  tokens: number;
  /** Markdown: a line saying what ran, then the table (or why there is none). */
  markdown: string;
}

const TOP = 15;

export async function profileRelay(
  name: string,
  spec: Omit<LoadSpec, "target" | "urls">,
  dir: string,
  startFleet: (coordinatorNodeArgs: string[]) => Promise<Fleet>,
): Promise<RelayProfile> {
  const abs = resolve(dir);
  await mkdir(abs, { recursive: true });
  const file = join(abs, `coordinator-${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.cpuprofile`);
  const fleet = await startFleet(["--cpu-prof", "--cpu-prof-dir", abs, "--cpu-prof-name", file.slice(abs.length + 1)]);
  let tokens = 0;
  try {
    const run = await measure({ ...spec, target: "seed", urls: [fleet.coordinator.url] }, () => [fleet.coordinator.pid]);
    tokens = run.report.tokens.completion;
  } finally {
    // The profile is written as the process exits: a graceful stop, with time to write it.
    await stopChild(fleet.coordinator.child, 30_000);
    await fleet.stop();
  }
  const head = `CPU profile of the coordinator relaying ${name} (one more run on a fleet of its own, \`node --cpu-prof\`, ${tokens.toLocaleString("en-US")} tokens, ${basename(file)})`;
  if (!existsSync(file)) return { file, tokens, markdown: `${head}\n\nThe coordinator wrote no profile (it did not exit by itself).` };
  const s = summarizeCpuProfile(readCpuProfile(file), { top: TOP, tokens });
  return {
    file, tokens,
    markdown: [
      `${head}. Busy ${(s.busyUs / 1000).toFixed(0)} ms of ${(s.totalUs / 1000).toFixed(0)} ms sampled ` +
        `(${tokens > 0 ? (s.busyUs / tokens).toFixed(1) : "—"} µs per token, start-up included); the top ${TOP} functions by self time:`,
      "",
      cpuProfileTable(s),
    ].join("\n"),
  };
}

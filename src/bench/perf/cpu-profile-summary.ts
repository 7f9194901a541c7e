import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { table } from "./markdown.js";

/**
 * The top functions of a V8 CPU profile (`node --cpu-prof`) by self time, for the notes of the
 * relay section: each function's self time summed over every call site, its share of the sampled
 * busy time (every sample but `(idle)`), and, given the tokens relayed while the profile ran, its
 * cost in µs per token.
 *   node cpu-profile-summary.js <file.cpuprofile> [--top 15] [--tokens N]
 * A sample's duration is the gap to the next sample (the last one's runs to the profile's end), as
 * Chrome DevTools counts it; times in a .cpuprofile are µs.
 */
export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  /** µs, on the profiler's clock. */
  startTime: number;
  endTime: number;
  /** The node on top of the stack at each sample. */
  samples?: number[];
  /** µs since the previous sample (the first: since startTime). */
  timeDeltas?: number[];
}

export interface FunctionCost {
  name: string;
  /** Script and 1-based line; empty for V8's own entries ((garbage collector), (program)). */
  where: string;
  selfUs: number;
  /** Of the busy time, 0..1. */
  share: number;
  /** Present when the tokens relayed during the profile were given. */
  usPerToken?: number;
}

export interface CpuProfileSummary {
  /** Sampled time, idle included (µs). */
  totalUs: number;
  /** Sampled time outside `(idle)` (µs). */
  busyUs: number;
  top: FunctionCost[];
}

export function summarizeCpuProfile(p: CpuProfile, o: { top: number; tokens?: number }): CpuProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  let t = p.startTime;
  const times = samples.map((_, i) => (t += deltas[i] ?? 0));
  for (let i = 0; i < samples.length; i++) {
    const dur = Math.max(0, (i + 1 < samples.length ? times[i + 1]! : p.endTime) - times[i]!);
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + dur);
  }
  // One row per function, whatever its callers: the same script position under several parents.
  const rows = new Map<string, FunctionCost>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)?.callFrame;
    if (f === undefined) continue;
    totalUs += us;
    if (f.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const name = f.functionName || "(anonymous)";
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : "";
    const key = `${name}\u0000${where}:${f.columnNumber}`;
    const row = rows.get(key) ?? { name, where, selfUs: 0, share: 0 };
    row.selfUs += us;
    rows.set(key, row);
  }
  const busyUs = totalUs - idleUs;
  const top = [...rows.values()]
    .sort((a, b) => b.selfUs - a.selfUs || a.name.localeCompare(b.name))
    .slice(0, o.top)
    .map((r) => ({ ...r, share: busyUs > 0 ? r.selfUs / busyUs : 0, ...(o.tokens !== undefined && o.tokens > 0 ? { usPerToken: r.selfUs / o.tokens } : {}) }));
  return { totalUs, busyUs, top };
}

/** The project's own files from dist/, a dependency from node_modules/, Node's internals as they are. */
export function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, "");
  const nm = path.lastIndexOf("/node_modules/");
  if (nm >= 0) return path.slice(nm + "/node_modules/".length);
  const dist = path.lastIndexOf("/dist/");
  if (dist >= 0) return path.slice(dist + "/dist/".length);
  return path;
}

/** The summary as a markdown table (µs/token only when tokens were given). */
export function cpuProfileTable(s: CpuProfileSummary): string {
  const perToken = s.top.some((r) => r.usPerToken !== undefined);
  return table(
    ["function", "where", "self ms", "% of busy", ...(perToken ? ["µs/token"] : [])],
    s.top.map((r) => [r.name, r.where || "—", r.selfUs / 1000, `${(r.share * 100).toFixed(1)}%`, ...(perToken ? [r.usPerToken ?? NaN] : [])]),
  );
}

export function readCpuProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
}

function main(argv: string[]): void {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { top: { type: "string" }, tokens: { type: "string" } } });
  if (positionals.length !== 1) throw new Error("usage: cpu-profile-summary <file.cpuprofile> [--top 15] [--tokens N]");
  const tokens = values.tokens === undefined ? undefined : Number(values.tokens);
  const s = summarizeCpuProfile(readCpuProfile(positionals[0]!), { top: Number(values.top ?? 15), tokens });
  process.stdout.write(`busy ${(s.busyUs / 1000).toFixed(0)} ms of ${(s.totalUs / 1000).toFixed(0)} ms sampled\n\n${cpuProfileTable(s)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));

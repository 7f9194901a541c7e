import type { Option } from "../common/config-parse.js";

/** Help text generated from the option tables, so it cannot drift from what is parsed. */
export function usageOf(command: string, summary: string, specs: Record<string, Option<unknown>>): string {
  const lines = [`inference-engine ${command}`, "", summary, "", "Options (flag, environment variable, default):"];
  for (const spec of Object.values(specs)) {
    const empty = spec.default === undefined || (Array.isArray(spec.default) && spec.default.length === 0);
    const def = empty ? "" : ` [default: ${Array.isArray(spec.default) ? spec.default.join(",") : String(spec.default)}]`;
    const names = [spec.flag, ...(spec.aliases ?? [])].join(", ");
    lines.push(`  ${names}${spec.env ? `  (${spec.env})` : ""}${def}`, `      ${spec.describe}`);
  }
  return lines.join("\n");
}

export const TOP_USAGE = `inference-engine <command> [options]

Commands:
  serve         a coordinator and N local workers (default 2), stopped together on Ctrl-C
  coordinator   the coordinator alone (workers register through heartbeats)
  worker        one worker serving one GGUF model (or --engine sim: a simulated one)
  pull <source> download a GGUF (hf:owner/repo/file.gguf or an https URL) into ./models
  bench         load test: throughput, TTFT, ITL, E2E latency, goodput
  help [cmd]    options of a command

Run 'inference-engine help <command>' for its options.`;

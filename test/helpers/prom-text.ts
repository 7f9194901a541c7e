import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { request } from "undici";

/** Scraping and checking Prometheus' text format in tests. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export async function scrape(url: string): Promise<{ status: number; contentType: string; text: string }> {
  const res = await request(`${url}/metrics`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: res.statusCode, contentType: String(res.headers["content-type"]), text: await res.body.text() };
}

/** Samples of the text format (comments skipped); label values unescaped for \\ \" \n. */
export function parsePromText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const lm of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[lm[1]!] = lm[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the sample with this name whose labels include `labels`. */
export function sampleValue(samples: PromSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

const PROMTOOL_PATHS = ["/usr/bin/promtool", "/usr/local/bin/promtool"];

export function promtoolPath(): string | undefined {
  return PROMTOOL_PATHS.find((p) => existsSync(p));
}

/** `promtool check metrics` on a scrape: its exit code and its findings, one per line. */
export function promtoolCheck(text: string): { code: number; findings: string[] } {
  const r = spawnSync(promtoolPath()!, ["check", "metrics"], { input: text, encoding: "utf8", timeout: 30_000 });
  const findings = `${r.stdout}\n${r.stderr}`.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return { code: r.status ?? -1, findings };
}

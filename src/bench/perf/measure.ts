import { benchOptions, type BenchConfig } from "../bench-options.js";
import { runBench } from "../run-bench.js";
import type { BenchReport } from "../report.js";
import { parseLengthDist } from "../workload.js";
import { HeapSampler } from "./heap-sampler.js";
import { cpuMs, RssSampler } from "./proc-stats.js";

/**
 * One measured load run: the bench tool's report plus the CPU time and peak RSS of the processes
 * under test (the relay: coordinator or nginx) over exactly that run.
 */
export interface LoadSpec {
  target: BenchConfig["target"];
  urls: string[];
  concurrency?: number;
  requestRate?: number;
  numRequests: number;
  inputTokens: number;
  outputTokens: number;
  durationS: number;
  seed?: number;
}

export interface Measured {
  report: BenchReport;
  cpuMs: number;
  peakRssBytes: number;
  rssSamples: { tMs: number; bytes: number }[];
  /** Peak V8 used heap of the server given as `heapOf` (bytes); undefined when not asked or unreadable. */
  peakHeapBytes: number | undefined;
}

export interface MeasureOptions {
  /** A server of ours whose /metrics heap is sampled over the run (every 500 ms). */
  heapOf?: string;
}

export function benchConfig(s: LoadSpec): BenchConfig {
  const defaults = Object.fromEntries(Object.entries(benchOptions).map(([k, o]) => [k, o.default])) as BenchConfig;
  return {
    ...defaults,
    target: s.target, urls: s.urls, concurrency: s.concurrency, requestRate: s.requestRate,
    numRequests: s.numRequests, durationS: s.durationS, graceS: 15,
    inputTokens: parseLengthDist(String(s.inputTokens)), outputTokens: parseLengthDist(String(s.outputTokens)),
    seed: s.seed ?? 0, progress: "off", requestTimeoutMs: 120_000,
  };
}

/** A multi-turn chat over the OpenAI chat API: `users` conversations of `turns` turns each. */
export interface ChatLoad {
  users: number;
  turns: number;
  systemPromptTokens: number;
  userTokens: number;
  outputTokens: number;
}

/** The bench tool's config for a chat load against one coordinator (`concurrency` conversations in flight). */
export function chatBenchConfig(url: string, model: string, w: ChatLoad, concurrency: number, durationS: number): BenchConfig {
  return {
    ...benchConfig({
      target: "openai-chat", urls: [url], concurrency, numRequests: w.users * w.turns,
      inputTokens: 1, outputTokens: w.outputTokens, durationS,
    }),
    model, workload: "chat", users: w.users, turns: w.turns,
    systemPromptTokens: w.systemPromptTokens, userTokens: parseLengthDist(String(w.userTokens)),
  };
}

export async function measure(s: LoadSpec, pids: () => number[], o: MeasureOptions = {}): Promise<Measured> {
  const sum = () => pids().reduce((a, p) => a + safeCpu(p), 0);
  const sampler = new RssSampler(pids, 200);
  const heap = o.heapOf === undefined ? undefined : new HeapSampler(o.heapOf, 500);
  const before = sum();
  const report = await runBench(benchConfig(s), { quietProgress: true });
  const cpu = sum() - before;
  const rss = sampler.stop();
  const peakHeapBytes = await heap?.stop();
  return { report, cpuMs: cpu, peakRssBytes: rss.peakBytes, rssSamples: rss.samples, peakHeapBytes };
}

function safeCpu(pid: number): number {
  try {
    return cpuMs(pid);
  } catch {
    return 0;
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const tokensPerS = (r: BenchReport) => r.throughput.outputTokensPerS;
export const mb = (b: number) => b / 1024 / 1024;

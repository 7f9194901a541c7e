import {
  boolOpt, choiceOpt, intOpt, numberOpt, optionalStrOpt, parseInteger, parseNumber, parseUrlList, strOpt, type ConfigOf, type Option,
} from "../common/config-parse.js";
import { TARGETS } from "./targets.js";
import { parseLengthDist, type LengthDist } from "./workload.js";

/** Options of `inference-engine bench` (flags only: a load run is described on its command line). */
const optionalNumber = (flag: string, min: number, max: number, describe: string): Option<number | undefined> => ({
  flag, default: undefined, describe, parse: (r) => parseNumber(r, min, max),
});
const optionalInt = (flag: string, min: number, max: number, describe: string): Option<number | undefined> => ({
  flag, default: undefined, describe, parse: (r) => parseInteger(r, min, max),
});
const lengthOpt = (flag: string, def: string, describe: string): Option<LengthDist> => ({
  flag, default: parseLengthDist(def), describe, parse: parseLengthDist,
});

export const benchOptions = {
  target: choiceOpt(undefined, "--target", "seed" as (typeof TARGETS)[number], TARGETS,
    "what to drive: seed (/coordinator/infer), worker (/worker/prefill + /worker/decode), worker-generate (/worker/generate), openai-completions, openai-chat"),
  urls: { flag: "--url", default: ["http://127.0.0.1:1337"], describe: "server URL(s), comma-separated (worker: round-robin)", parse: parseUrlList } as Option<string[]>,
  model: strOpt(undefined, "--model", "default", "model name sent with each request"),
  workload: choiceOpt(undefined, "--workload", "random" as "random" | "chat", ["random", "chat"] as const,
    "random prompts, or multi-turn chat (users × turns, shared system prompt, growing history, session ids)"),
  inputTokens: lengthOpt("--input-tokens", "128", "random: prompt tokens, fixed (128) or uniform range (64:256)"),
  outputTokens: lengthOpt("--output-tokens", "128", "max_tokens of each request, fixed or range"),
  numRequests: intOpt(undefined, "--num-requests", 100, 1, 10_000_000, "at most this many requests"),
  durationS: numberOpt(undefined, "--duration-s", 60, 0.1, 86_400, "no request starts after this many seconds"),
  graceS: numberOpt(undefined, "--grace-s", 10, 0, 3600, "requests still running this long after the duration are aborted"),
  concurrency: optionalInt("--concurrency", 1, 100_000, "fixed concurrency: N requests in flight (default 8 when no --request-rate)"),
  requestRate: { flag: "--request-rate", default: undefined, describe: "arrivals per second (gamma gaps; inf: all at once)",
    parse: (r) => (r === "inf" ? Infinity : parseNumber(r, 1e-6, 1e7)) } as Option<number | undefined>,
  burstiness: numberOpt(undefined, "--burstiness", 1, 0.01, 100, "shape of the gamma gaps: 1 Poisson, <1 burstier, >1 smoother"),
  maxConcurrency: optionalInt("--max-concurrency", 1, 100_000, "with --request-rate: at most this many in flight"),
  users: intOpt(undefined, "--users", 8, 1, 100_000, "chat: conversations"),
  turns: intOpt(undefined, "--turns", 4, 1, 10_000, "chat: turns per conversation"),
  systemPromptTokens: intOpt(undefined, "--system-prompt-tokens", 256, 0, 1_000_000, "chat: tokens of the shared system prompt"),
  userTokens: lengthOpt("--user-tokens", "32", "chat: tokens of each user message"),
  seed: intOpt(undefined, "--seed", 0, 0, 2 ** 32 - 1, "seed of prompts, lengths and arrival gaps"),
  sloTtftMs: optionalNumber("--slo-ttft-ms", 0, 1e9, "goodput SLO: time to first token (ms)"),
  sloTpotMs: optionalNumber("--slo-tpot-ms", 0, 1e9, "goodput SLO: time per output token (ms)"),
  sloE2eMs: optionalNumber("--slo-e2e-ms", 0, 1e9, "goodput SLO: end-to-end latency (ms)"),
  requestTimeoutMs: intOpt(undefined, "--request-timeout-ms", 120_000, 1, 86_400_000, "a request taking longer is aborted and failed"),
  json: boolOpt(undefined, "--json", false, "print the report as JSON instead of the table"),
  out: optionalStrOpt(undefined, "--out", "also write the JSON report (with per-request results) to this file"),
  svg: optionalStrOpt(undefined, "--svg", "write a latency-over-time chart (SVG) to this file"),
  progress: choiceOpt(undefined, "--progress", "auto" as "auto" | "on" | "off", ["auto", "on", "off"] as const, "progress bar on stderr (auto: when a terminal)"),
};

export type BenchConfig = ConfigOf<typeof benchOptions>;

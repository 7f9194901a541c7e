import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { SchedulerProfileName } from "../../common/config.js";
import type { BenchReport } from "../report.js";
import { runBench } from "../run-bench.js";
import { startQuiet, waitRoutable, type Served } from "./fleet.js";
import { table, verdict } from "./markdown.js";
import { chatBenchConfig, median } from "./measure.js";
import type { SectionResult, SuiteMode } from "./suite-types.js";

/**
 * 6. Routing profiles on a multi-turn chat: for each scheduler profile, a fresh coordinator and two
 * stories260K workers (1 thread, 4 decode slots each: the machine's 2 cores), and the bench tool's
 * multi-turn chat over the OpenAI chat API: 7 conversations × 6 turns, a shared system prompt, a
 * growing history (each turn re-sends it with the answers received), 7 in flight. Prefill is what
 * routing saves: on this engine it grows faster than linearly with the history.
 *
 * Reported per profile (medians over the repetitions, which alternate the profiles' order): turn ≥ 2
 * TTFT p50/p99, the prefix-cache hit ratio of turns ≥ 2 (cached prompt tokens / prompt tokens, as
 * the workers report them) and its ideal (multi-turn.ts: every turn reusing its previous turn's
 * KV), output tokens/s. Targets: cache-aware turn ≥ 2 TTFT p50 ≤ ½ round-robin's; its hit ratio
 * ≥ 90% of the ideal; its output tokens/s not below round-robin's.
 *
 * An odd number of conversations on purpose: with an even number in lockstep, round-robin's
 * counter would send every conversation back to the same worker each turn, which no real arrival
 * order does.
 */
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
/** The profiles compared, and cache-aware with the saturation guard at 1.5 (its default is 1). */
const VARIANTS: { name: string; profile: SchedulerProfileName; env: Record<string, string> }[] = [
  { name: "cache-aware", profile: "cache-aware", env: {} },
  { name: "round-robin", profile: "round-robin", env: {} },
  { name: "least-load", profile: "least-load", env: {} },
  { name: "seed", profile: "seed", env: {} },
  { name: "cache-aware, saturation 1.5", profile: "cache-aware", env: { SCHEDULER_SATURATION: "1.5" } },
];

export const CHAT = { users: 7, turns: 6, systemPromptTokens: 150, userTokens: 40, outputTokens: 32 };
const QUICK = { users: 3, turns: 2, systemPromptTokens: 20, userTokens: 8, outputTokens: 4 };

interface Row {
  variant: (typeof VARIANTS)[number];
  runs: BenchReport[];
}

async function startFleet(v: Row["variant"], model: string): Promise<{ coordinator: Served; workers: Served[]; stop(): Promise<void> }> {
  const coordinator = await startQuiet(["coordinator"], "/coordinator/health", { HEARTBEAT_INTERVAL_MS: "250", SCHEDULER_PROFILE: v.profile, ...v.env });
  const workers = await Promise.all(
    ["w1", "w2"].map((id) =>
      startQuiet(["worker", "--model", model, "--worker-id", id], "/worker/health", {
        COORDINATOR_URL: coordinator.url, HEARTBEAT_INTERVAL_MS: "250", THREADS: "1", PARALLEL: "4",
      }, []),
    ),
  );
  await waitRoutable(coordinator.url, 2);
  return { coordinator, workers, stop: async () => void (await Promise.all([...workers.map((w) => w.stop()), coordinator.stop()])) };
}

export async function routingProfiles(mode: SuiteMode): Promise<SectionResult> {
  const model = join(ROOT, "../shared/models/stories260K.gguf");
  const w = mode.quick ? QUICK : CHAT;
  const reps = mode.quick ? 1 : 3;
  const rows: Row[] = VARIANTS.map((variant) => ({ variant, runs: [] }));
  for (let rep = 0; rep < reps; rep++) {
    for (const row of rep % 2 === 0 ? rows : [...rows].reverse()) {
      mode.log(`routing: ${row.variant.name}, repetition ${rep + 1}`);
      const fleet = await startFleet(row.variant, model);
      try {
        row.runs.push(await runBench(chatBenchConfig(fleet.coordinator.url, "stories260K", w, w.users, 600), { quietProgress: true }));
      } finally {
        await fleet.stop();
      }
    }
  }

  const stat = (r: Row, f: (b: BenchReport) => number | undefined) => median(r.runs.map((b) => f(b) ?? NaN));
  const summary = rows.map((r) => ({
    profile: r.variant.name,
    p50: stat(r, (b) => b.multiTurn?.laterTurns.ttft?.p50),
    p99: stat(r, (b) => b.multiTurn?.laterTurns.ttft?.p99),
    hit: stat(r, (b) => b.multiTurn?.laterTurns.hitRatio),
    ideal: stat(r, (b) => b.multiTurn?.laterTurns.idealHitRatio),
    overallHit: stat(r, (b) => b.prefixCache?.hitRatio),
    tps: stat(r, (b) => b.throughput.outputTokensPerS),
    notOk: r.runs.reduce((a, b) => a + b.requests.failed + b.requests.rejected, 0),
    p50s: r.runs.map((b) => b.multiTurn?.laterTurns.ttft?.p50 ?? NaN),
  }));
  const ca = summary.find((s) => s.profile === "cache-aware")!;
  const rr = summary.find((s) => s.profile === "round-robin")!;
  const speedup = rr.p50 / ca.p50;
  const ofIdeal = ca.hit / ca.ideal;
  const md = [
    `2 stories260K workers (THREADS=1, PARALLEL=4), a coordinator per profile, fresh processes for every run (cold caches). ` +
      `Workload: ${w.users} conversations × ${w.turns} turns over the OpenAI chat API, shared system prompt of ${w.systemPromptTokens} words, ` +
      `user messages of ${w.userTokens} words, ${w.outputTokens}-token greedy answers, ${w.users} in flight (each conversation sends its next turn when its answer ends). ` +
      `Medians of ${reps} repetition${reps > 1 ? "s" : ""} alternating the profiles' order; requests not completed: ${summary.map((s) => `${s.profile} ${s.notOk}`).join(", ")}.`,
    "",
    "```",
    "inference-engine coordinator --scheduler-profile <profile>",
    "THREADS=1 PARALLEL=4 inference-engine worker --model ../shared/models/stories260K.gguf --worker-id w1   # and w2",
    `inference-engine bench --target openai-chat --model stories260K --workload chat --users ${w.users} --turns ${w.turns} ` +
      `--system-prompt-tokens ${w.systemPromptTokens} --user-tokens ${w.userTokens} --output-tokens ${w.outputTokens} --concurrency ${w.users}`,
    "```",
    "",
    table(["profile", "turn ≥ 2 TTFT p50 (ms)", "turn ≥ 2 TTFT p99 (ms)", "turn ≥ 2 hit ratio", "its ideal", "hit / ideal", "all turns hit ratio", "output tok/s"],
      summary.map((s) => [s.profile, s.p50, s.p99, pct(s.hit), pct(s.ideal), pct(s.hit / s.ideal), pct(s.overallHit), s.tps])),
    "",
    table(["target", "measured", ""], [
      ["cache-aware turn ≥ 2 TTFT p50 at least 2× better than round-robin", `${speedup.toFixed(2)}×`, verdict(speedup >= 2)],
      ["cache-aware turn ≥ 2 hit ratio ≥ 90% of its ideal", pct(ofIdeal), verdict(ofIdeal >= 0.9)],
      ["cache-aware output tokens/s not below round-robin's", `${(ca.tps / rr.tps).toFixed(2)}×`, verdict(ca.tps >= rr.tps)],
    ]),
    "",
    `Turn ≥ 2 TTFT p50 of each repetition (ms): ${summary.map((s) => `${s.profile} ${s.p50s.map((x) => Math.round(x)).join(" / ")}`).join("; ")}; ` +
      `round-robin ÷ cache-aware per repetition: ${rr.p50s.map((x, i) => (x / ca.p50s[i]!).toFixed(2)).join(", ")}.`,
    "",
    "Notes. Every profile profits from the workers' own prefix cache: a worker gives a new session the free slot holding the " +
      "longest prefix of its prompt (its conversation's earlier turn, or the shared system prompt) unless that would destroy more " +
      "cache than it saves, so even round-robin reuses a conversation's turn before last when it is still kept; what routing adds " +
      "is the last turn, and keeping each conversation on one worker, which doubles the cache the fleet holds (7 conversations, 8 " +
      "slots: spread over both workers they evict each other). The ideal counts later turns only (turn 1 can at best reuse the system " +
      "prompt). An odd number of conversations on purpose: an even number in lockstep would send every conversation back to the same " +
      "worker under round-robin, which no real arrival order does. The last row is the saturation guard at 1.5 instead of its default 1: " +
      "there a conversation waits for a slot at its busy worker (up to half as many sessions again as slots) rather than move and " +
      "rebuild its history elsewhere once; fewer cold prefills (the p99), but a worker that holds more conversations than slots " +
      "keeps a queue (the p50).",
  ].join("\n");
  return { title: "6. Routing profiles on a multi-turn chat", markdown: md, data: { workload: w, reps, summary, runs: rows.map((r) => ({ profile: r.variant.name, reports: r.runs })) } };
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "—");

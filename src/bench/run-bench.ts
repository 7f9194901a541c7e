import { writeFile } from "node:fs/promises";
import { loadOptions } from "../common/config-parse.js";
import { createRng } from "../common/rng.js";
import { benchOptions, type BenchConfig } from "./bench-options.js";
import { latencyChartSvg } from "./latency-chart.js";
import { runLoad } from "./load-runner.js";
import { barCells, ProgressBar } from "../common/progress-bar.js";
import { buildReport, type BenchReport } from "./report.js";
import { formatReport } from "./report-table.js";
import { Target } from "./targets.js";
import { ChatWorkload, RandomWorkload, type Workload } from "./workload.js";

/** `inference-engine bench`: one bounded load run, then the report (table or JSON). */
export async function runBenchCli(argv: readonly string[]): Promise<number> {
  const { config } = loadOptions(benchOptions, argv, {});
  const report = await runBench(config);
  console.log(config.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return 0;
}

/** Runs the load `config` describes and returns the report (also used by the performance suite). */
export async function runBench(config: BenchConfig, opts: { quietProgress?: boolean } = {}): Promise<BenchReport> {
  const rng = createRng(config.seed);
  const workload: Workload = config.workload === "chat"
    ? new ChatWorkload({ users: config.users, turns: config.turns, systemPromptTokens: config.systemPromptTokens, userTokens: config.userTokens, output: config.outputTokens }, rng)
    : new RandomWorkload(config.inputTokens, config.outputTokens, rng);
  const numRequests = config.workload === "chat" ? Math.min(config.numRequests, config.users * config.turns) : config.numRequests;
  const target = new Target({ kind: config.target, urls: config.urls, model: config.model, timeoutMs: config.requestTimeoutMs });
  // On stderr when it is a terminal (or --progress on): done, not ok and in flight, redrawn as results come.
  const progress = new ProgressBar(process.stderr, opts.quietProgress ? false : config.progress === "auto" ? undefined : config.progress === "on");
  const showProgress = (inFlight: number, final = false) => progress.show(
    `${barCells(numRequests > 0 ? done / numRequests : 0, ".")} ${done}/${numRequests} done, ${notOk} not ok, ${inFlight} in flight, ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    { now: final },
  );
  const t0 = performance.now();
  let done = 0;
  let notOk = 0;
  const concurrency = config.requestRate === undefined ? (config.concurrency ?? 8) : undefined;
  try {
    const run = await runLoad(workload, target, {
      concurrency, ratePerS: config.requestRate, burstiness: config.burstiness, maxConcurrency: config.maxConcurrency ?? config.concurrency,
      numRequests, durationMs: config.durationS * 1000, graceMs: config.graceS * 1000, rng,
      onResult: (r, inFlight) => {
        done++;
        if (r.outcome !== "completed") notOk++;
        showProgress(inFlight);
      },
    });
    showProgress(0, true);
    progress.done();
    const report = buildReport(run.results, run.durationS, { ttftMs: config.sloTtftMs, tpotMs: config.sloTpotMs, e2eMs: config.sloE2eMs }, {
      target: config.target, urls: config.urls, model: config.model, workload: config.workload,
      ...(config.workload === "chat"
        ? { users: config.users, turns: config.turns, system_prompt_tokens: config.systemPromptTokens, user_tokens: config.userTokens }
        : { input_tokens: config.inputTokens }),
      output_tokens: config.outputTokens, num_requests: numRequests, duration_s: config.durationS,
      ...(concurrency !== undefined ? { concurrency } : { request_rate: config.requestRate, burstiness: config.burstiness, max_concurrency: config.maxConcurrency ?? config.concurrency ?? null }),
      seed: config.seed,
    });
    if (config.out !== undefined) await writeFile(config.out, JSON.stringify({ ...report, results: run.results.map(({ text: _t, itlMs: _i, ...r }) => r) }, null, 2));
    if (config.svg !== undefined) await writeFile(config.svg, latencyChartSvg(run.results, `${config.target} ${config.urls.join(",")}: latency over time`));
    return report;
  } finally {
    await target.close();
  }
}
